"""Google Ads Customer Match removal, one OfflineUserDataJob per configured user list.

For each list: POST {base_url}/{version}/customers/{cid}/offlineUserDataJobs:create (type
CUSTOMER_MATCH_USER_LIST), POST {job}:addOperations with one `remove` per person
(userIdentifiers hashedEmail / hashedPhoneNumber: SHA-256 hex of the trimmed lowercase
email / the E.164 phone with '+'), then POST {job}:run. OAuth refresh-token grant plus the
`developer-token` (and optional `login-customer-id`) header on every call.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

from optout.connectors.base import Connector, Job, Model, Outcome, parse_config
from optout.connectors.errors import DeliveryError
from optout.connectors.hashing import email_sha256, google_phone_sha256
from optout.connectors.http import json_body
from optout.connectors.oauth import BearerSession
from optout.identifiers import IdType
from optout.systems import CONNECTOR_ID_TYPES

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret


class GoogleAdsOptions(Model):
    base_url: str
    api_version: str = "v21"
    customer_id: str
    user_list_ids: tuple[str, ...]
    login_customer_id: str | None = None
    token_url: str = GOOGLE_TOKEN_URL


class GoogleAdsSecret(Model):
    developer_token: str
    client_id: str
    client_secret: str
    refresh_token: str


class GoogleAdsConnector(Connector):
    # People per addOperations call; Google allows far more identifiers per request, but a
    # smaller call fails (and retries) a smaller batch.
    max_batch = 5000
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["google_ads"]

    def configure(self) -> None:
        self.opts = parse_config(GoogleAdsOptions, self.system.options, "options", self.system.name)
        self.creds = parse_config(GoogleAdsSecret, self.secret, "credentials", self.system.name)
        self.session = BearerSession(
            self.http,
            self.opts.token_url,
            {
                "grant_type": "refresh_token",
                "client_id": self.creds.client_id,
                "client_secret": self.creds.client_secret,
                "refresh_token": self.creds.refresh_token,
            },
            step="google_ads",
        )
        self.root = f"{self.opts.base_url.rstrip('/')}/{self.opts.api_version}"

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "developer-token": self.creds.developer_token,
        }
        if self.opts.login_customer_id:
            headers["login-customer-id"] = self.opts.login_customer_id
        return headers

    def _call(self, url: str, step: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self.session.send(
            "POST", url, step=step, headers=self._headers(), body=json_body(payload)
        )
        body = answer.json()
        return body if isinstance(body, dict) else {}

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        operations = [{"remove": {"userIdentifiers": self._user_identifiers(job)}} for job in jobs]
        refs = []
        cid = self.opts.customer_id
        for list_id in self.opts.user_list_ids:
            created = self._call(
                f"{self.root}/customers/{cid}/offlineUserDataJobs:create",
                "google_ads create job",
                {
                    "job": {
                        "type": "CUSTOMER_MATCH_USER_LIST",
                        "customerMatchUserListMetadata": {
                            "userList": f"customers/{cid}/userLists/{list_id}"
                        },
                    }
                },
            )
            job_name = created.get("resourceName")
            if not isinstance(job_name, str) or not job_name.startswith(f"customers/{cid}/"):
                raise DeliveryError("google_ads create job: no resourceName", retryable=True)
            self._call(
                f"{self.root}/{job_name}:addOperations",
                "google_ads add operations",
                {"operations": operations, "enablePartialFailure": False},
            )
            self._call(f"{self.root}/{job_name}:run", "google_ads run job", {})
            refs.append(job_name)
        return [Outcome(j.job_id, "done", 200, ",".join(refs), self.types_sent(j)) for j in jobs]

    def _user_identifiers(self, job: Job) -> list[dict[str, str]]:
        identifiers = []
        for identifier in self.identifiers(job):
            if identifier.type == "email":
                identifiers.append({"hashedEmail": email_sha256(identifier.value)})
            else:
                identifiers.append({"hashedPhoneNumber": google_phone_sha256(identifier.value)})
        return identifiers
