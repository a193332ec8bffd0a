"""Salesforce: find the person among Contacts, Leads (and Person Accounts), make sure each has
an Individual (data privacy record), and set the opt-out there and, optionally, on the record.

1. OAuth 2.0 client credentials at {base_url}/services/oauth2/token.
2. One composite call (POST .../composite) running a SOQL query per lookup object, the emails
   in the request body (never in a URL that proxies and access logs keep):
   Contact and Lead (unconverted) by Email; with `person_accounts`, Account by PersonEmail
   where IsPersonAccount, and Contacts where not IsPersonAccount (a Person Account's "person
   contact" is the same person: Salesforce's guidance is to work through the Account).
   Each record's Individual is IndividualId (PersonIndividualId). A
   result in pages (`done: false`) is read to its end through each `nextRecordsUrl`.
3. A record without an Individual gets one: POST .../composite/graph, one graph per record
   creating its Individual (LastName is required: the record's own) and linking the record to
   it (`@{individual0.id}`). Salesforce runs each graph all or nothing, so no Individual is
   left unlinked by a refused link; the call is tried once (a 5xx or timeout may follow a
   commit), and its failure goes to the queue's back-off, whose next delivery looks the
   records up again and finds the ones linked: a resend never makes a second Individual.
   Past 75 records (GRAPHS_PER_CALL) the graphs go in several calls; one refused as a whole
   for good (a 4xx) fails its own records' jobs only, the others going on to their opt-outs.
4. PATCH .../composite/sobjects setting the Individuals' opt-out fields (purpose -> field,
   `fields`; HasOptedOutTracking / HasOptedOutProfiling by default); then, only with
   `record_field`, such calls (one per record type) setting an org's own checkbox (e.g. a
   custom `Do_Not_Sell__c`) on the Contact/Lead/Account itself. Not one call: whether
   Salesforce refuses an unknown field in that record only or the whole call (HTTP 400, as a
   single-record update does) is unconfirmed, and a whole-call refusal must not cost the
   Individuals' opt-outs (the proof of the opt-out; the checkbox is the extra). A refusal of
   the record-field call fails the jobs of its records as a refused record does
   (`Account HTTP 400 INVALID_FIELD`); what the Individuals' call wrote stays written.
   Each call holds at most 200 records (Salesforce refuses a longer list as a whole,
   EXCEEDED_ID_LIMIT); a batch with more sends several, and a call refused as a whole (a
   4xx other than a limit or our credentials) fails the jobs of its own records only, the
   Individuals' calls as the checkboxes' (`Individual HTTP 400 INVALID_FIELD`).
   A custom Contact field appears on a Person Account with the `__pc` ending
   (`Do_Not_Sell__c` is `Do_Not_Sell__pc` there; Salesforce refuses the `__c` name with
   INVALID_FIELD): the Account record is written under that name, or under
   `person_account_record_field` when the org's field lives on Account itself.
`fields` must map every purpose of the system (configure() refuses it otherwise): a purpose
without a field would be a "done" receipt with nothing written; a job for a purpose it does
not map fails before any call.
A person with no Contact, Lead or Person Account is `no_record` ("no such person"), only when
every lookup query answered: a lookup answer without `compositeResponse`, or without one of
its queries, is retried (transient), never no_record. The receipt
lists every record changed (`Contact/003...`, `Individual/0PK...`). Salesforce answers
synchronously: "done" means every write succeeded; a record Salesforce refused fails the jobs
it belongs to with Salesforce's status code. Any other 4xx answer keeps Salesforce's
`errorCode` (a code only, never its message, which can quote values): `HTTP 400 INVALID_FIELD`.
An org over an API limit answers 403 `REQUEST_LIMIT_EXCEEDED` (not 429): retried, not failed
(`limit_error`).
"""

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from optout.connectors.base import (
    DROPPED_REFERENCE,
    Connector,
    Job,
    Outcome,
    reason_code,
    reference,
)
from optout.connectors.errors import ConfigError, DeliveryError
from optout.connectors.http import HttpResponse, json_body, status_error
from optout.connectors.models import Model, parse_config
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
COLLECTION_SIZE = 200  # records per sObject Collections call
# Composite Graph ("Composite Graph Limits", REST API Developer Guide, developer.salesforce.com,
# read 2026-12-03): at most 75 graphs and 500 nodes a payload (ours: 2 nodes a graph), 15
# different nodes (ours: 4); after 14 failed graphs the rest answer PROCESSING_HALTED,
# unprocessed: sent again in the next call.
GRAPHS_PER_CALL = 75
HALTED = "PROCESSING_HALTED"
CREATE_STEP = "salesforce create Individual"  # the composite graph call, step 3
# A query answers at most 2,000 rows a page; 100 emails needing more than 50 pages (100,000
# records) is not a person but a shared address: refused rather than read without end.
MAX_QUERY_PAGES = 50
# An org over an API limit answers 403 with this errorCode ("API Request Limits and
# Allocations", developer.salesforce.com, checked 2026-12-01) and no wait. Its daily total is
# a rolling 24 h window that frees as the calls of a day ago age out: a retry an hour later
# can succeed, where the back-off's minutes would spend the job's 8 receives while the org is
# still over (8 tries span about 7 h). When `Sforce-Limit-Info: api-usage=n/m` shows calls
# left (n < m), the limit hit is the one on concurrent long-running requests, which frees as
# they end: the queue's back-off.
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
DAILY_LIMIT_WAIT_SECONDS = 3600.0
API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
# Lookup object -> (email field, Individual field, extra condition)
LOOKUPS: dict[str, tuple[str, str, str]] = {
    "Contact": ("Email", "IndividualId", ""),
    "Lead": ("Email", "IndividualId", " AND IsConverted = false"),
    "Account": ("PersonEmail", "PersonIndividualId", " AND IsPersonAccount = true"),
}


@dataclass(frozen=True, kw_only=True)
class SalesforceOptions(Model):
    base_url: str
    api_version: str = "v66.0"
    person_accounts: bool = False  # the org has Person Accounts enabled
    fields: dict[Purpose, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    record_field: str | None = None  # a checkbox set on the Contact/Lead/Account too
    # Its name on a Person Account; None: record_field's Contact name there (`__c` -> `__pc`)
    person_account_record_field: str | None = None


@dataclass(frozen=True, kw_only=True)
class SalesforceSecret(Model):
    client_id: str
    client_secret: str


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslash and quote escaped (emails may contain an apostrophe)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Person:
    """One Contact/Lead/Account found for an email."""

    sobject: str
    record_id: str
    email: str
    last_name: str
    individual_id: str | None
    error: str | None = None  # Salesforce's status code when a write for it failed
    changed: list[str] = field(default_factory=list)
    opted_out: bool = False  # its Individual's opt-out fields were written


class SalesforceConnector(Connector[SalesforceSecret]):
    max_batch = 100  # emails per lookup; keeps the SOQL well under its length limit
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["salesforce"]
    secret_model = SalesforceSecret

    def configure(self) -> None:
        self.opts = parse_config(
            SalesforceOptions, self.system.options, "options", self.system.name
        )
        # A purpose without a field would be "done" with nothing written (the default map has
        # no limit_sensitive): refused here, as Segment's consent mode refuses a missing category.
        missing = sorted(set(self.system.purposes) - set(self.opts.fields))
        if missing:
            raise ConfigError(
                f"system {self.system.name}: options.fields must map every purpose to an "
                f"Individual opt-out field (missing {missing})"
            )
        if self.opts.person_account_record_field and not (
            self.opts.record_field and self.opts.person_accounts
        ):
            raise ConfigError(
                f"system {self.system.name}: options.person_account_record_field needs "
                "record_field and person_accounts: alone it would write nothing"
            )
        self.root = self.opts.base_url.rstrip("/")
        self.data = f"{self.root}/services/data/{self.opts.api_version}"
        self.lookup_objects = ["Contact", "Lead"] + (
            ["Account"] if self.opts.person_accounts else []
        )
        self._session: tuple[SalesforceSecret, BearerSession] | None = None

    @property
    def session(self) -> BearerSession:
        creds = self.creds
        if self._session is None or self._session[0] is not creds:
            form = {
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            }
            token_url = self.root + "/services/oauth2/token"
            self._session = (creds, BearerSession(self.http, token_url, form, step="salesforce"))
        return self._session[1]

    def weight(self, job: Job) -> int:
        return len(self.identifiers(job))

    def calls_per_batch(self, jobs: int) -> int:
        # a token (cached), the lookup, Individuals created and linked (one graph call for
        # up to GRAPHS_PER_CALL records), the opt-outs written, and with record_field the
        # records' checkboxes in a call per record type (at most: Contact, Lead, Account)
        return 4 + (len(LOOKUPS) if self.opts.record_field else 0)

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        unmapped = {job.job_id: self._unmapped(job) for job in jobs}
        writable = [job for job in jobs if not unmapped[job.job_id]]
        by_email: dict[str, list[Person]] = {}
        if writable:
            emails = sorted({i.value for job in writable for i in self.identifiers(job)})
            people = self._lookup(emails)
            self._link_individuals([p for p in people if p.individual_id is None])
            self._set_opt_outs(writable, [p for p in people if p.error is None])
            for person in people:
                by_email.setdefault(person.email, []).append(person)
        return [
            self._no_field(job, unmapped[job.job_id])
            if unmapped[job.job_id]
            else self._outcome(job, by_email)
            for job in jobs
        ]

    def _unmapped(self, job: Job) -> list[Purpose]:
        return sorted(p for p in job.purposes if p not in self.opts.fields)

    def _no_field(self, job: Job, purposes: list[Purpose]) -> Outcome:
        """A job carrying a purpose no field stands for (configure() refuses such a system,
        so only a job for a purpose the system does not list): nothing is written or looked
        up, and the job fails for good rather than a receipt covering an unwritten purpose."""
        error = DeliveryError(
            f"salesforce: options.fields has no field for {', '.join(purposes)}",
            retryable=False,
        )
        return Outcome(job.job_id, None, error=error)

    def _outcome(self, job: Job, by_email: dict[str, list[Person]]) -> Outcome:
        found = [p for i in self.identifiers(job) for p in by_email.get(i.value, [])]
        types = self.types_sent(job)
        if not found:
            return Outcome(job.job_id, "no_record", 200, None, types, note="no such person")
        errors = sorted({p.error for p in found if p.error})
        if errors:
            error = DeliveryError(
                "salesforce update: " + ", ".join(errors), retryable=False, http_status=200
            )
            return Outcome(job.job_id, None, 200, None, types, error=error)
        if not all(p.opted_out for p in found):  # e.g. a job without purposes: nothing to set
            error = DeliveryError("salesforce: no opt-out field written", retryable=False)
            return Outcome(job.job_id, None, 200, None, types, error=error)
        # Salesforce's record ids, kept only when id-shaped (base.reference), as every ref is
        changed = {c for p in found for c in p.changed}
        kept = tuple(sorted(c for c in changed
                            if reference(c.partition("/")[2], job.identifiers)))  # fmt: skip
        ids = {p.individual_id for p in found if p.individual_id}
        individuals = sorted(i for i in ids if reference(i, job.identifiers))
        dropped = len(kept) < len(changed) or len(individuals) < len(ids)
        note = DROPPED_REFERENCE if dropped else None
        return Outcome(job.job_id, "done", 200, ",".join(individuals) or None, types,
                       records_changed=kept, note=note)  # fmt: skip

    def _send(
        self,
        method: str,
        url: str,
        *,
        step: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        once: bool = False,
    ) -> HttpResponse:
        """One REST call; a non-2xx raises, an API limit's 403 as retryable (limit_error)."""
        answer = self.session.send(
            method, url, step=step, headers=headers, body=body, raise_for_status=False, once=once
        )
        if 200 <= answer.status < 300:
            return answer
        raise limit_error(step, answer) or coded_error(step, answer)

    # -- 2. lookup ---------------------------------------------------------------------

    def _lookup(self, emails: list[str]) -> list[Person]:
        quoted = ", ".join(soql_quote(e) for e in emails)
        subrequests = []
        for sobject in self.lookup_objects:
            email_field, individual_field, condition = LOOKUPS[sobject]
            if sobject == "Contact" and self.opts.person_accounts:
                # Each Person Account has a "person contact": found through the Account, not
                # again as a Contact (the field exists only where Person Accounts are enabled)
                condition += " AND IsPersonAccount = false"
            # Values are SOQL-quoted (soql_quote); object and field names are ours.
            soql = (
                f"SELECT Id, {email_field}, {individual_field}, LastName FROM {sobject} "  # noqa: S608
                f"WHERE {email_field} IN ({quoted}){condition}"
            )
            subrequests.append(
                {
                    "method": "GET",
                    "url": f"/services/data/{self.opts.api_version}/query?q="
                    + urllib.parse.quote(soql, safe=""),
                    "referenceId": sobject,
                }
            )
        answer = self._send(
            "POST",
            f"{self.data}/composite",
            step="salesforce lookup",
            headers={"Content-Type": "application/json"},
            body=json_body({"allOrNone": False, "compositeRequest": subrequests}),
        )
        people: list[Person] = []
        answered: set[str] = set()
        for sub in _subresponses(answer.json()):
            sobject = str(sub.get("referenceId"))
            answered.add(sobject)
            status = int(sub.get("httpStatusCode", 500))
            if not 200 <= status < 300 or sobject not in LOOKUPS:
                raise coded_error(
                    f"salesforce lookup {sobject}",
                    HttpResponse(status, {}, b""),
                    sub.get("body"),
                )
            page = sub.get("body")
            pages = 0
            while True:
                people.extend(_people(sobject, page))
                if not isinstance(page, dict) or page.get("done", True) is not False:
                    break
                page, pages = self._next_page(sobject, page.get("nextRecordsUrl")), pages + 1
                if pages > MAX_QUERY_PAGES:
                    raise DeliveryError(
                        f"salesforce lookup {sobject}: more than {MAX_QUERY_PAGES} pages",
                        retryable=False,
                    )
        # A query without its subresponse is not an empty result: its records are unknown,
        # so the batch is retried rather than a "no such person" receipt written.
        unanswered = [o for o in self.lookup_objects if o not in answered]
        if unanswered:
            raise DeliveryError(
                f"salesforce lookup {', '.join(unanswered)}: no answer", retryable=True
            )
        return people

    def _next_page(self, sobject: str, locator: object) -> object:
        """The next page of a query result (`done: false`): GET its `nextRecordsUrl`, a path on
        this org (anything else is refused: the records past page 1 would go unchanged)."""
        if not isinstance(locator, str) or not locator.startswith("/services/data/"):
            raise DeliveryError(
                f"salesforce lookup {sobject}: more records but no nextRecordsUrl",
                retryable=False,
            )
        answer = self._send("GET", self.root + locator, step=f"salesforce lookup {sobject}")
        return answer.json()

    # -- 3. Individuals where missing --------------------------------------------------

    def _link_individuals(self, missing: list[Person]) -> None:
        pending = list(missing)
        while pending:
            chunk, pending = pending[:GRAPHS_PER_CALL], pending[GRAPHS_PER_CALL:]
            try:
                halted = self._create_and_link(chunk)
            except DeliveryError as error:
                # A call refused as a whole for good (a 4xx but a limit or our credentials)
                # fails its own records' jobs only; past 75 records the other calls' people
                # go on to their opt-outs (vendor35). Anything else retries the batch.
                refusal = _refusal_for_good(error, CREATE_STEP)
                if refusal is None:
                    raise
                for person in chunk:
                    person.error = f"Individual {refusal}"
                continue
            if len(halted) == len(chunk):  # nothing processed: no progress to be made now
                raise DeliveryError(f"{CREATE_STEP}: {HALTED} for every record", retryable=True)
            pending = halted + pending

    def _create_and_link(self, chunk: list[Person]) -> list[Person]:
        """One composite graph call, a graph per record: create its Individual and link the
        record to it, all or nothing. Returns the records Salesforce did not process."""
        path = f"/services/data/{self.opts.api_version}/sobjects"
        # referenceIds unique across the payload (`individual0`, `link0`, ...): Salesforce's
        # graph pages do not say whether a repeat in another graph is allowed, and every
        # example of theirs avoids one (vendorfix L3)
        graphs = [
            {
                "graphId": f"g{n}",
                "compositeRequest": [
                    {
                        "method": "POST",
                        "url": f"{path}/Individual",
                        "referenceId": f"individual{n}",
                        "body": {"LastName": person.last_name},
                    },
                    {
                        "method": "PATCH",
                        "url": f"{path}/{person.sobject}/"
                        + urllib.parse.quote(person.record_id, safe=""),
                        "referenceId": f"link{n}",
                        "body": {LOOKUPS[person.sobject][1]: f"@{{individual{n}.id}}"},
                    },
                ],
            }
            for n, person in enumerate(chunk)
        ]
        step = CREATE_STEP
        answer = self._send(
            "POST",
            f"{self.data}/composite/graph",
            step=step,
            headers={"Content-Type": "application/json"},
            body=json_body({"graphs": graphs}),
            once=True,
        )
        payload = answer.json()
        answered = payload.get("graphs") if isinstance(payload, dict) else None
        by_id = {g.get("graphId"): g for g in answered or () if isinstance(g, dict)}
        halted: list[Person] = []
        for n, person in enumerate(chunk):
            # A graph missing from the answer may have been applied: retried, and the next
            # delivery's lookup finds its link (never created twice)
            graph = by_id.get(f"g{n}")
            nodes = _graph_nodes(graph, step)
            if isinstance(graph, dict) and graph.get("isSuccessful") is True:
                created = nodes.get(f"individual{n}", {}).get("body")
                new_id = created.get("id") if isinstance(created, dict) else None
                if not isinstance(new_id, str) or not new_id:
                    raise DeliveryError(f"{step}: malformed answer", retryable=True)
                person.individual_id = new_id
                person.changed += [f"Individual/{new_id}", f"{person.sobject}/{person.record_id}"]
                continue
            codes = {ref: _error_code(node.get("body")) for ref, node in nodes.items()}
            refused = [(ref, code) for ref, code in codes.items() if code != HALTED]
            if not refused:  # rolled back or never run: nothing of it was applied
                halted.append(person)
                continue
            ref, code = refused[0]
            person.error = f"{'Individual' if ref == f'individual{n}' else person.sobject} {code}"
        return halted

    # -- 4. the opt-out ----------------------------------------------------------------

    def _set_opt_outs(self, jobs: Sequence[Job], people: list[Person]) -> None:
        purposes: dict[str, set[Purpose]] = {}  # email -> purposes opted out
        for job in jobs:
            for identifier in self.identifiers(job):
                purposes.setdefault(identifier.value, set()).update(job.purposes)
        individual_fields: dict[str, dict[str, bool]] = {}
        owners: dict[str, list[Person]] = {}
        for person in people:
            assert person.individual_id is not None
            wanted = {
                self.opts.fields[p]: True
                for p in purposes.get(person.email, ())
                if p in self.opts.fields
            }
            individual_fields.setdefault(person.individual_id, {}).update(wanted)
            owners.setdefault(f"Individual/{person.individual_id}", []).append(person)
        records: list[dict[str, Any]] = [
            {"attributes": {"type": "Individual"}, "id": individual, **values}
            for individual, values in sorted(individual_fields.items())
            if values
        ]
        # refused=True: past 200 Individuals the writes go in several calls, and a call
        # Salesforce refuses as a whole fails the jobs of its own records only; raised, it
        # failed every job of the batch, those whose Individuals an earlier call had written
        # included (vendor35)
        step = "salesforce set opt-out"
        self._apply(records, self._collections("PATCH", records, step, refused=True), owners)
        if not self.opts.record_field:
            return
        # Calls of their own, after the Individuals' (the module's docstring, step 4), one per
        # record type: the field is named per type (`__c`, `__pc`), so a whole-call refusal of
        # one type's name costs only that type's jobs (review s34d M1). None for a person whose
        # Individual was refused: the record would say "do not sell" while the job failed (L2).
        by_type: dict[str, list[dict[str, Any]]] = {}
        for person in people:
            if person.error is not None:
                continue
            by_type.setdefault(person.sobject, []).append(
                {
                    "attributes": {"type": person.sobject},
                    "id": person.record_id,
                    self._record_field(person.sobject): True,
                }
            )
            owners.setdefault(f"{person.sobject}/{person.record_id}", []).append(person)
        step = "salesforce set record field"
        for checkboxes in by_type.values():
            results = self._collections("PATCH", checkboxes, step, refused=True)
            self._apply(checkboxes, results, owners)

    def _apply(
        self,
        records: list[dict[str, Any]],
        results: list[tuple[str | None, str]],
        owners: dict[str, list[Person]],
    ) -> None:
        """Each write's result on the people it belongs to: a refusal as their error (the
        first one kept: an Individual's refusal is not hidden by a checkbox's)."""
        for record, result in zip(records, results, strict=True):
            sobject = str(record["attributes"]["type"])
            name = f"{sobject}/{record['id']}"
            for person in owners.get(name, []):
                if result[0] is None:
                    person.error = person.error or f"{sobject} {result[1]}"
                    continue
                if name not in person.changed:
                    person.changed.append(name)
                if sobject == "Individual":
                    person.opted_out = True

    def _record_field(self, sobject: str) -> str:
        """`record_field` as `sobject` names it. Accounts are looked up as Person Accounts
        only, where a custom Contact field ends in `__pc` ("Creating and Undeleting a Person
        Account", Change Data Capture Developer Guide, developer.salesforce.com, read
        2026-12-03; review s31 vendors V31-2)."""
        name = str(self.opts.record_field)
        if sobject != "Account":
            return name
        if self.opts.person_account_record_field:
            return self.opts.person_account_record_field
        return name[: -len("__c")] + "__pc" if name.endswith("__c") else name

    def _collections(
        self, method: str, records: list[dict[str, Any]], step: str, *, refused: bool = False
    ) -> list[tuple[str | None, str]]:
        """sObject Collections, 200 records a call, allOrNone false: per record (id, "") on
        success or (None, status code) when Salesforce refused that record. With `refused`, a
        call Salesforce refuses for good (a 4xx other than a limit or our credentials) is
        (None, "HTTP 400 INVALID_FIELD") for each record of that call, not raised."""
        results: list[tuple[str | None, str]] = []
        for start in range(0, len(records), COLLECTION_SIZE):
            chunk = records[start : start + COLLECTION_SIZE]
            try:
                answer = self._send(
                    method,
                    f"{self.data}/composite/sobjects",
                    step=step,
                    headers={"Content-Type": "application/json"},
                    body=json_body({"allOrNone": False, "records": chunk}),
                )
            except DeliveryError as error:
                refusal = _refusal_for_good(error, step) if refused else None
                if refusal is None:
                    raise
                results += [(None, refusal)] * len(chunk)
                continue
            payload = answer.json()
            if not isinstance(payload, list) or len(payload) != len(chunk):
                raise DeliveryError(f"{step}: malformed answer", retryable=True)
            for entry in payload:
                if isinstance(entry, dict) and entry.get("success") and entry.get("id"):
                    results.append((str(entry["id"]), ""))
                else:
                    errors = entry.get("errors") if isinstance(entry, dict) else None
                    first = errors[0] if isinstance(errors, list) and errors else {}
                    code = first.get("statusCode") if isinstance(first, dict) else None
                    if not isinstance(code, str) or not reason_code(code):
                        code = "UNKNOWN_ERROR"  # not a code: it could be any text
                    results.append((None, code))
        return results


def _graph_nodes(graph: object, step: str) -> dict[str, dict[str, Any]]:
    """A graph's node results by referenceId; an answer without them is not understood
    (retried: whether the graph was applied is unknown, and the next lookup tells)."""
    response = graph.get("graphResponse") if isinstance(graph, dict) else None
    nodes = response.get("compositeResponse") if isinstance(response, dict) else None
    if not isinstance(nodes, list) or not all(isinstance(node, dict) for node in nodes):
        raise DeliveryError(f"{step}: malformed answer", retryable=True)
    return {str(node.get("referenceId")): node for node in nodes}


def _refusal_for_good(error: DeliveryError, step: str) -> str | None:
    """A call Salesforce refused as a whole for good (a 4xx other than a limit or our
    credentials): its reason without the step ("HTTP 400 INVALID_FIELD"), which fails the jobs
    of that call's records only. None: anything else, raised (retried, or credentials re-read)."""
    status = error.http_status or 0
    if error.retryable or error.auth or not 400 <= status < 500:
        return None
    return error.reason.removeprefix(f"{step}: ")


def _error_code(body: object) -> str:
    """The first errorCode of a node's error body, or UNKNOWN_ERROR when it has none that is
    a code (it could be any text)."""
    first = body[0] if isinstance(body, list) and body else {}
    code = first.get("errorCode") if isinstance(first, dict) else None
    return code if isinstance(code, str) and reason_code(code) else "UNKNOWN_ERROR"


def _subresponses(payload: object) -> list[dict[str, Any]]:
    """The lookup's `compositeResponse` entries; an answer without that list is not understood
    (retried: an empty list would read as "no such person")."""
    subs = payload.get("compositeResponse") if isinstance(payload, dict) else None
    if not isinstance(subs, list) or not all(isinstance(sub, dict) for sub in subs):
        raise DeliveryError("salesforce lookup: malformed answer", retryable=True)
    return subs


def _people(sobject: str, page: object) -> list[Person]:
    """The records of one page of a lookup query. A page without its `records` list is not
    understood (retried): read as no records, it made a "no such person" receipt."""
    email_field, individual_field, _ = LOOKUPS[sobject]
    records = page.get("records") if isinstance(page, dict) else None
    if not isinstance(records, list):
        raise DeliveryError(f"salesforce lookup {sobject}: malformed answer", retryable=True)
    people = []
    for record in records:
        if not isinstance(record, dict):
            continue
        email, record_id = record.get(email_field), record.get("Id")
        if isinstance(email, str) and isinstance(record_id, str):
            individual = record.get(individual_field)
            people.append(
                Person(
                    sobject,
                    record_id,
                    email.strip().lower(),
                    str(record.get("LastName") or "Unknown"),
                    individual if isinstance(individual, str) else None,
                )
            )
    return people


def coded_error(step: str, answer: HttpResponse, body: object = None) -> DeliveryError:
    """status_error, and on a 4xx Salesforce's first `errorCode` after the status (`HTTP 400
    INVALID_FIELD`): a code only, never the `message`, which can quote a record's values.
    `body` is the error body when it is not the answer's own (a composite subresponse)."""
    if not 400 <= answer.status < 500:
        return status_error(step, answer)
    payload = answer.json() if body is None else body
    first = payload[0] if isinstance(payload, list) and payload else {}
    code = first.get("errorCode") if isinstance(first, dict) else None
    if not isinstance(code, str) or not reason_code(code) or " " in code:
        return status_error(step, answer)
    return status_error(step, answer, detail=code)


def limit_error(step: str, answer: HttpResponse) -> DeliveryError | None:
    """A retryable error for Salesforce's API-limit answer (403, errorCode
    REQUEST_LIMIT_EXCEEDED), None for any other answer (another 403 stays final)."""
    if answer.status != 403:
        return None
    payload = answer.json()
    codes = (
        [e.get("errorCode") for e in payload if isinstance(e, dict)]
        if isinstance(payload, list)
        else []
    )
    if REQUEST_LIMIT_EXCEEDED not in codes:
        return None
    usage = API_USAGE.search(answer.headers.get("sforce-limit-info", ""))
    calls_left = usage is not None and int(usage[1]) < int(usage[2])
    return DeliveryError(
        f"{step}: HTTP 403 {REQUEST_LIMIT_EXCEEDED}",
        retryable=True,
        http_status=403,
        retry_after=None if calls_left else DAILY_LIMIT_WAIT_SECONDS,
    )
