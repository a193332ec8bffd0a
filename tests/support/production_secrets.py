"""A production container's secrets in (moto's) Secrets Manager: the HMAC key, the identity-token
key and, with the edge on, the origin secret, named in the environment as the template names
them, local mode off and nothing cached."""

import json

import boto3
import pytest

from optout import secrets as secret_store

HASH_KEY, TOKEN_KEY = "optout-bridge/prod/hash-key", "optout-bridge/prod/identity-token-key"
EDGE_SECRET, EDGE_VALUE = "optout-bridge/prod/edge-origin", "edge-secret-value"


def production_secrets(monkeypatch: pytest.MonkeyPatch, edge: bool = False) -> None:
    monkeypatch.setattr(secret_store, "_cached", {})
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.create_secret(Name=HASH_KEY, SecretString="s" * 64)
    sm.create_secret(Name=TOKEN_KEY, SecretString=json.dumps({"kid": "k1", "key": "t" * 64}))
    monkeypatch.delenv("OPTOUT_LOCAL_MODE")
    monkeypatch.setenv("HASH_KEY_SECRET_NAME", HASH_KEY)
    monkeypatch.setenv("IDENTITY_TOKEN_SECRET_NAME", TOKEN_KEY)
    if edge:
        sm.create_secret(Name=EDGE_SECRET, SecretString=EDGE_VALUE)
        monkeypatch.setenv("EDGE_SECRET_NAME", EDGE_SECRET)
