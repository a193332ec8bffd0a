"""Salesforce: find each person's Individual through Contact/Lead, then set its opt-out flags.

1. OAuth 2.0 client credentials at {base_url}/services/oauth2/token.
2. One composite call (POST .../composite) running a SOQL query per lookup object
   (`SELECT Email, IndividualId FROM Contact WHERE Email IN (...)`): the emails travel in the
   request body, never in a request URL that proxies and access logs keep.
3. PATCH .../sobjects/Individual/{Id} with the mapped flags (HasOptedOutTracking, ...).
A person with no Contact/Lead carrying an Individual is "no_record": a receipt, not an error.
"""

import urllib.parse
from collections.abc import Sequence
from typing import Any, ClassVar

from optout.connectors.base import Connector, Job, Model, Outcome, parse_config
from optout.connectors.errors import DeliveryError
from optout.connectors.http import HttpResponse, json_body, status_error
from optout.connectors.oauth import BearerSession
from optout.identifiers import IdType
from optout.purposes import Purpose
from optout.systems import CONNECTOR_ID_TYPES

DEFAULT_FIELDS: dict[Purpose, str] = {
    "sale": "HasOptedOutTracking",
    "share": "HasOptedOutTracking",
    "targeted_advertising": "HasOptedOutTracking",
    "profiling": "HasOptedOutProfiling",
}


class SalesforceOptions(Model):
    base_url: str
    api_version: str = "v62.0"
    lookup_objects: tuple[str, ...] = ("Contact", "Lead")
    fields: dict[Purpose, str] = DEFAULT_FIELDS


class SalesforceSecret(Model):
    client_id: str
    client_secret: str


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslash and quote escaped (emails may contain an apostrophe)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceConnector(Connector):
    max_batch = 100  # emails per composite lookup; keeps the SOQL well under its length limit
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["salesforce"]

    def configure(self) -> None:
        self.opts = parse_config(
            SalesforceOptions, self.system.options, "options", self.system.name
        )
        creds = parse_config(SalesforceSecret, self.secret, "credentials", self.system.name)
        self.root = self.opts.base_url.rstrip("/")
        self.session = BearerSession(
            self.http,
            self.root + "/services/oauth2/token",
            {
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            },
            step="salesforce",
        )

    def weight(self, job: Job) -> int:
        return len(self.identifiers(job))

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        emails = sorted({i.value for job in jobs for i in self.identifiers(job)})
        individuals, lookup_status = self._lookup(emails)
        outcomes = []
        for job in jobs:
            ids = sorted(
                {iid for i in self.identifiers(job) for iid in individuals.get(i.value, ())}
            )
            if not ids:
                outcomes.append(
                    Outcome(
                        job.job_id,
                        "no_record",
                        lookup_status,
                        None,
                        self.types_sent(job),
                        note="no matching Individual",
                    )
                )
                continue
            outcomes.append(self._update(job, ids))
        return outcomes

    def _lookup(self, emails: list[str]) -> tuple[dict[str, set[str]], int]:
        quoted = ", ".join(soql_quote(e) for e in emails)
        subrequests = []
        for sobject in self.opts.lookup_objects:
            # Values are SOQL-quoted (soql_quote); the object name comes from operator config.
            soql = (
                f"SELECT Email, IndividualId FROM {sobject} "  # noqa: S608
                f"WHERE Email IN ({quoted}) AND IndividualId != null"
            )
            subrequests.append(
                {
                    "method": "GET",
                    "url": f"/services/data/{self.opts.api_version}/query?q="
                    + urllib.parse.quote(soql, safe=""),
                    "referenceId": sobject,
                }
            )
        answer = self.session.send(
            "POST",
            f"{self.root}/services/data/{self.opts.api_version}/composite",
            step="salesforce lookup",
            headers={"Content-Type": "application/json"},
            body=json_body({"allOrNone": False, "compositeRequest": subrequests}),
        )
        found: dict[str, set[str]] = {}
        payload = answer.json()
        for sub in payload.get("compositeResponse", []) if isinstance(payload, dict) else []:
            status = int(sub.get("httpStatusCode", 500))
            if not 200 <= status < 300:
                raise status_error("salesforce lookup query", HttpResponse(status, {}, b""))
            for record in sub.get("body", {}).get("records", []):
                email, individual = record.get("Email"), record.get("IndividualId")
                if isinstance(email, str) and isinstance(individual, str):
                    found.setdefault(email.strip().lower(), set()).add(individual)
        return found, answer.status

    def _update(self, job: Job, individual_ids: list[str]) -> Outcome:
        fields: dict[str, Any] = {
            self.opts.fields[p]: True for p in job.purposes if p in self.opts.fields
        }
        status = 204
        try:
            for individual in individual_ids:
                answer = self.session.send(
                    "PATCH",
                    f"{self.root}/services/data/{self.opts.api_version}/sobjects/Individual/{individual}",
                    step="salesforce Individual update",
                    headers={"Content-Type": "application/json"},
                    body=json_body(fields),
                )
                status = answer.status
        except DeliveryError as error:  # this job only: the batch's other people are unaffected
            return Outcome(
                job.job_id,
                None,
                error.http_status,
                error=error,
                identifier_types_sent=self.types_sent(job),
            )
        return Outcome(job.job_id, "done", status, ",".join(individual_ids), self.types_sent(job))
