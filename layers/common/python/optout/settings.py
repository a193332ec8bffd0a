"""Configuration, validated once per cold start from the environment."""

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Documented development default (README "Configuration"): used only in local mode
# (OPTOUT_LOCAL_MODE=true: the local stack and the tests). Production sets HASH_KEY_SECRET_NAME.
LOCAL_HASH_KEY = "optout-bridge-local-development-key-not-secret"


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
    max_link_depth: Annotated[int, Field(ge=1)] = 4
    max_cluster_size: Annotated[int, Field(ge=2)] = 50

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        values: dict[str, str] = {}
        for name in cls.model_fields:
            key = name.upper()
            if key in env and env[key] != "":
                values[name] = env[key]
        return cls.model_validate(values)
