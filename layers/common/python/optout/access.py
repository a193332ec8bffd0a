"""Who may call the IAM routes: an allow-list of principals per use, from the environment.

API Gateway has already verified the SigV4 signature (AWS_IAM); this checks *which* principal
signed. A call made with an assumed role's session (`arn:aws:sts::<account>:assumed-role/
<role>/<session>`) counts as that role (`arn:aws:iam::<account>:role/<path/><role>`); other
ARNs (IAM users) must match exactly. An empty list allows nobody.
"""

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

Use = Literal["linker", "operator"]
_ENV = {"linker": "LINKER_PRINCIPALS", "operator": "OPERATOR_PRINCIPALS"}
_ASSUMED_ROLE = re.compile(r"^arn:[\w-]+:sts::(\d{12}):assumed-role/([^/]+)/[^/]+$")
_ROLE = re.compile(r"^arn:[\w-]+:iam::(\d{12}):role/(?:[^/]+/)*([^/]+)$")


def principal_of(arn: str) -> str:
    """A comparable identity: a role (whichever session or path) or the ARN itself."""
    for pattern in (_ASSUMED_ROLE, _ROLE):
        found = pattern.fullmatch(arn)
        if found:
            return f"role:{found[1]}:{found[2]}"
    return arn


class CallerAllowList(BaseModel):
    model_config = ConfigDict(frozen=True)

    linker: frozenset[str] = frozenset()
    operator: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> "CallerAllowList":
        def listed(name: str) -> frozenset[str]:
            raw = os.environ.get(name, "")
            return frozenset(principal_of(a.strip()) for a in raw.split(",") if a.strip())

        return cls(linker=listed(_ENV["linker"]), operator=listed(_ENV["operator"]))

    def allows(self, use: Use, caller_arn: str | None) -> bool:
        if not caller_arn:
            return False
        allowed = self.linker if use == "linker" else self.operator
        return principal_of(caller_arn) in allowed
