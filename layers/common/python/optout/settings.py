"""Configuration, validated once per cold start from the environment."""

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Documented development default (README "Configuration"): used only in local mode
# (OPTOUT_LOCAL_MODE=true: the local stack and the tests). Production sets HASH_KEY_SECRET_NAME.
LOCAL_HASH_KEY = "optout-bridge-local-development-key-not-secret"
# The same for identity tokens (README "Identity tokens"): the local demo login signs with it.
# Accepted only with OPTOUT_LOCAL_MODE=true; a deployed capture function without
# IDENTITY_TOKEN_SECRET_NAME refuses to start (optout/token_keys.py).
LOCAL_TOKEN_KID = "local-dev"  # noqa: S105 - a key id, and a documented development one
LOCAL_TOKEN_KEY = "optout-bridge-local-development-token-key-not-secret"  # noqa: S105


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str
    hash_key_secret_name: str | None = None
    local_hash_key: str = LOCAL_HASH_KEY
    optout_local_mode: bool = False  # OPTOUT_LOCAL_MODE; nothing sets it on Lambda
    edge_secret_name: str | None = None  # EnableEdge=true: the CloudFront origin header's secret
    store_ip_address: bool = False
    record_retention_days: Annotated[int, Field(ge=731)] = 1095  # CCPA: >= 24 months
    policy_version: str = "unversioned"
    max_body_bytes: int = 16 * 1024
    systems_config: str = "config/systems.json"
    queue_url_template: str = ""  # "https://sqs.../{system}-jobs": one queue per system
    # A job and the in-flight marks of its identities are one transaction (100 items at most).
    max_cluster_size: Annotated[int, Field(ge=2, le=99)] = 50
    # Identities that may assert one identifier (webform, banner without a token): bounds
    # what a stranger can make every later resolution of that identifier read.
    max_asserters: Annotated[int, Field(ge=1, le=1000)] = 100
    identity_token_secret_name: str | None = None
    identity_token_audience: Annotated[str, Field(min_length=1)] = "optout-bridge"  # noqa: S105
    identity_token_max_lifetime_seconds: Annotated[int, Field(ge=30, le=3600)] = 600

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        values: dict[str, str] = {}
        for name in cls.model_fields:
            key = name.upper()
            if key in env and env[key] != "":
                values[name] = env[key]
        return cls.model_validate(values)
