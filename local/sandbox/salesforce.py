"""Salesforce: OAuth client credentials, composite SOQL lookups, sObject Collections writes.

Records are synthetic and deterministic, chosen by an email's local part:
  unknown*       no record at all ("no such person")
  noindividual*  a Contact *without* an Individual (the connector must create and link one)
  lead*          an unconverted Lead with an Individual
  person*        a Person Account (PersonEmail, PersonIndividualId), and its person contact
  personnoindividual*  a Person Account without an Individual
  anything else  a Contact with an Individual
As in Salesforce, every Person Account has a "person contact": a Contact row (IsPersonAccount
true) that a Contact query returns unless it says `AND IsPersonAccount = false`; its
IndividualId is the Account's PersonIndividualId (one field: a write to either is a write to
the Account). Person contacts are kept in `person_contacts`, not in `records`.
A query result longer than `page_size` rows comes in pages (`done: false`, `nextRecordsUrl`),
as Salesforce pages one. State is kept: an Individual created and linked is found by the next
query, and every field set is in `individuals` / `records` for tests to read. A retired API
version (past its end of life in optout.connectors.versions) answers 410 Gone, as
Salesforce's REST API does.
POST /composite/graph runs each graph all or nothing, as Salesforce does: its nodes (sObject
POST and PATCH, `@{referenceId.id}` resolved from an earlier node) run in order, and a node
refused rolls the whole graph back (the other nodes answer PROCESSING_HALTED); after 14 failed
graphs the rest are not run (PROCESSING_HALTED). Limits: 75 graphs, 500 nodes a payload; a
referenceId repeated anywhere in the payload is refused (undocumented: the strict reading).
The org's custom checkboxes (any `*__c` boolean) are Individual, Contact and Lead fields (the
person-level ones created on Contact, as Salesforce advises). On a Person Account a Contact
field is named with `__pc` ("Creating and Undeleting a Person Account", Change Data Capture
Developer Guide), so an Account write takes `*__pc` and refuses `*__c` with INVALID_FIELD for
that record; a Contact or Lead refuses `*__pc`.
Whether Salesforce refuses such an unknown field in that record only (`allOrNone: false`, the
default here) or refuses the whole Collections call is unconfirmed (docs/vendors.md): with
`whole_call_invalid_field` set (a fault setting, as tests set the other vendors' faults) a
Collections update naming an unknown field in any record is answered as a single-record update
is, a 400 `INVALID_FIELD` for the whole call, and none of its records is written.
"""

import copy
import hashlib
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response, parse_json
from optout.connectors.versions import expired

API = re.compile(r"^/services/data/(v\d+\.0)(/.*)$")
SOQL = re.compile(
    r"^SELECT Id, (Email|PersonEmail), (IndividualId|PersonIndividualId), LastName "
    r"FROM (Contact|Lead|Account) WHERE (?:Email|PersonEmail) IN \((.+)\)"
    r"( AND IsConverted = false| AND IsPersonAccount = (?:true|false))?$"
)
LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")
INDIVIDUAL_FIELDS = {
    "HasOptedOutTracking",
    "HasOptedOutProfiling",
    "HasOptedOutProcessing",
    "HasOptedOutSolicit",
    "HasOptedOutGeoTracking",
    "ShouldForget",
    "SendIndividualData",
}
LINK_FIELD = {"Contact": "IndividualId", "Lead": "IndividualId", "Account": "PersonIndividualId"}
PREFIX = {"Contact": "003", "Lead": "00Q", "Account": "001", "Individual": "0PK"}
TOKEN = "00Dsandbox!fake-session-token"  # noqa: S105 - fake, sandbox only
COLLECTION_SIZE = 200
MAX_GRAPHS, MAX_NODES, MAX_GRAPH_FAILURES = 75, 500, 14  # "Composite Graph Limits"
REFERENCE = re.compile(r"^@\{([A-Za-z0-9_]+)\.id\}$")
SOBJECT_URL = re.compile(r"^/services/data/v\d+\.0/sobjects/([A-Za-z]+)(?:/([^/]+))?$")
HALTED_BODY = [{"errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another operation in the "
                           "same transaction failed."}]  # fmt: skip


def record_id(sobject: str, key: str) -> str:
    return PREFIX[sobject] + hashlib.sha256(f"{sobject}:{key}".encode()).hexdigest()[:15].upper()


def sf_error(status: int, code: str, message: str) -> SandboxResponse:
    return json_response(status, [{"message": message, "errorCode": code}])


class Salesforce:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.client_id = secrets.get("client_id")
        self.client_secret = secrets.get("client_secret")
        self.individuals: dict[str, dict[str, Any]] = {}  # Id -> fields
        self.records: dict[str, dict[str, Any]] = {}  # Id -> {type, Email, link field, ...}
        # Rows per query page (Salesforce: up to 2,000); a longer result answers `done: false`
        # and a `nextRecordsUrl` for the rest, read with GET until `done` is true.
        self.page_size = 2000
        self.cursors: dict[str, list[dict[str, Any]]] = {}  # query locator -> rows after it
        self.person_contacts: dict[str, str] = {}  # person contact Id -> its Account's Id
        self.whole_call_invalid_field = False  # see the module's docstring
        # Tests: (HTTP status, OAuth `error`) the token endpoint refuses every request with,
        # e.g. (400, "rate_limit_exceeded"): Salesforce's code for too many logins, whose status
        # it does not document (an RFC 6749 error answer is a 400 unless said otherwise)
        self.token_refusal: tuple[int, str] | None = None

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST" and request.path == "/services/oauth2/token":
            return self._token(request)
        match = API.match(request.path)
        if match is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        version, path = match.groups()
        if expired("salesforce", version, datetime.now(UTC).date()):
            return sf_error(410, "GONE", f"API version {version} has been retired")
        if bearer(request) != TOKEN:
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        body = parse_json(request)
        if request.method == "POST" and path == "/composite":
            return self._composite(body)
        if request.method == "POST" and path == "/composite/graph":
            return self._graphs(body)
        if request.method == "GET" and path.startswith("/query/"):
            return self._more(version, path.removeprefix("/query/"))
        if path == "/composite/sobjects" and request.method in ("POST", "PATCH"):
            records = body.get("records") if isinstance(body, dict) else None
            if not isinstance(records, list) or not records:
                return sf_error(400, "JSON_PARSER_ERROR", "records: a list required")
            if len(records) > COLLECTION_SIZE:  # the whole call refused (vendor35)
                return sf_error(400, "EXCEEDED_ID_LIMIT", "record limit reached: 200 a call")
            handle = self._create if request.method == "POST" else self._update
            # copied only when the switch is on (the bench's stack never sets it)
            saved = (copy.deepcopy((self.individuals, self.records))
                     if self.whole_call_invalid_field else None)  # fmt: skip
            results = [handle(r) for r in records]
            codes = {r["errors"][0]["statusCode"] for r in results if not r["success"]}
            if saved is not None and "INVALID_FIELD" in codes:
                self.individuals, self.records = saved  # the whole call refused: none written
                return sf_error(400, "INVALID_FIELD", "No such column on the entity")
            return json_response(200, results)
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def _token(self, request: SandboxRequest) -> SandboxResponse:
        if self.token_refusal is not None:
            status, error = self.token_refusal
            return json_response(status, {"error": error, "error_description": "refused"})
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type"})
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return json_response(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        return json_response(
            200,
            {
                "access_token": TOKEN,
                "token_type": "Bearer",
                "instance_url": "https://sandbox.my.salesforce.com",
            },
        )

    # -- reads ------------------------------------------------------------------------------

    def _composite(self, body: Any) -> SandboxResponse:
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests or len(subrequests) > 25:
            return sf_error(400, "JSON_PARSER_ERROR", "bad request")
        return json_response(200, {"compositeResponse": [self._query(s) for s in subrequests]})

    def _query(self, sub: Any) -> dict[str, Any]:
        reference = sub.get("referenceId") if isinstance(sub, dict) else None
        url = str(sub.get("url", "")) if isinstance(sub, dict) else ""
        parsed = urllib.parse.urlsplit(url)
        match = SOQL.match(dict(urllib.parse.parse_qsl(parsed.query)).get("q", ""))
        api = API.match(parsed.path)
        if sub.get("method") != "GET" or not api or not match:
            return {
                "body": [{"errorCode": "MALFORMED_QUERY", "message": "unexpected query"}],
                "httpHeaders": {},
                "httpStatusCode": 400,
                "referenceId": reference,
            }
        email_field, link_field, sobject, literals, condition = match.groups()
        emails = [m.replace("\\'", "'").replace("\\\\", "\\") for m in LITERAL.findall(literals)]
        person_contacts = sobject == "Contact" and condition != " AND IsPersonAccount = false"
        records = []
        for email in emails:
            found = self._person(email)
            if found is not None and found["type"] == "Account" and person_contacts:
                # the Person Account's person contact, a Contact row of its own
                found = {**found, "Id": found["PersonContactId"], "type": "Contact",
                         "IndividualId": found.get("PersonIndividualId")}  # fmt: skip
            if found is None or found["type"] != sobject:
                continue
            records.append(
                {
                    "attributes": {"type": sobject},
                    "Id": found["Id"],
                    email_field: email,
                    link_field: found.get(link_field),
                    "LastName": found["LastName"],
                }
            )
        return {
            "body": self._page(api.group(1), records),
            "httpHeaders": {},
            "httpStatusCode": 200,
            "referenceId": reference,
        }

    def _page(self, version: str, rows: list[dict[str, Any]]) -> Any:
        """A query result page: the first `page_size` rows, and a locator for the rest."""
        page: dict[str, Any] = {"totalSize": len(rows), "done": True,
                                "records": rows[: self.page_size]}  # fmt: skip
        if len(rows) > self.page_size:
            locator = f"01gSANDBOX{len(self.cursors):06d}-{self.page_size}"
            self.cursors[locator] = rows[self.page_size :]
            page["done"] = False
            page["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}"
        return page

    def _more(self, version: str, locator: str) -> SandboxResponse:
        rows = self.cursors.pop(locator, None)
        if rows is None:
            return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return json_response(200, self._page(version, rows))

    def _person(self, email: str) -> dict[str, Any] | None:
        local = email.split("@", maxsplit=1)[0]
        if local.startswith("unknown"):
            return None
        sobject = (
            "Lead"
            if local.startswith("lead")
            else "Account"
            if local.startswith("person")
            else "Contact"
        )
        rid = record_id(sobject, email)
        if rid not in self.records:
            record: dict[str, Any] = {
                "type": sobject,
                "Id": rid,
                "LastName": "Sandbox",
                "email": email,
            }
            if sobject == "Account":
                record["PersonContactId"] = record_id("Contact", email)
                self.person_contacts[record["PersonContactId"]] = rid
            if not local.removeprefix("person").startswith("noindividual"):
                individual = record_id("Individual", email)
                self.individuals.setdefault(individual, {"LastName": "Sandbox"})
                record[LINK_FIELD[sobject]] = individual
            self.records[rid] = record
        return self.records[rid]

    # -- composite graph: each graph all or nothing ------------------------------------------

    def _graphs(self, body: Any) -> SandboxResponse:
        given = body.get("graphs") if isinstance(body, dict) else None
        graphs: list[dict[str, Any]] = [
            g
            for g in given or ()
            if isinstance(g, dict) and isinstance(g.get("compositeRequest"), list)
        ]
        nodes_sent = sum(len(g["compositeRequest"]) for g in graphs)
        # Salesforce does not say whether a referenceId may repeat in another graph of the
        # payload (its examples never do): the sandbox takes the strict reading and refuses it
        references = [n.get("referenceId") if isinstance(n, dict) else None
                      for g in graphs for n in g["compositeRequest"]]  # fmt: skip
        ok = (
            isinstance(given, list)
            and len(graphs) == len(given)
            and 0 < len(graphs) <= MAX_GRAPHS
            and len({g.get("graphId") for g in graphs}) == len(graphs)
            and nodes_sent <= MAX_NODES
            and len(set(references)) == len(references)
        )
        if not ok:
            return sf_error(
                400, "INVALID_GRAPH", "graphs: 1 to 75 graphs, 500 nodes, unique referenceIds"
            )
        answered: list[dict[str, Any]] = []
        failures = 0
        for graph in graphs:
            if failures > MAX_GRAPH_FAILURES:
                nodes = [_node(n.get("referenceId"), 400, HALTED_BODY)
                         for n in graph["compositeRequest"]]  # fmt: skip
                result = False
            else:
                result, nodes = self._graph(graph["compositeRequest"])
                failures += not result
            answered.append({"graphId": graph["graphId"], "isSuccessful": result,
                             "graphResponse": {"compositeResponse": nodes}})  # fmt: skip
        return json_response(200, {"graphs": answered})

    def _graph(self, requests: list[Any]) -> tuple[bool, list[dict[str, Any]]]:
        """One graph's nodes in order; the first refused rolls every write of it back."""
        saved = copy.deepcopy((self.individuals, self.records))
        ids: dict[str, str] = {}
        nodes: list[dict[str, Any]] = []
        for request in requests:
            reference = request.get("referenceId") if isinstance(request, dict) else None
            result = self._node(request, ids)
            if not result.get("success"):
                self.individuals, self.records = saved
                body = [{"errorCode": result["errors"][0]["statusCode"],
                         "message": result["errors"][0]["message"]}]  # fmt: skip
                return False, [
                    _node(reference, 400, body) if n is request
                    else _node(n.get("referenceId") if isinstance(n, dict) else None, 400,
                               HALTED_BODY)
                    for n in requests
                ]  # fmt: skip
            if isinstance(reference, str):
                ids[reference] = result["id"]
            created = isinstance(request, dict) and request.get("method") == "POST"
            nodes.append(_node(reference, 201, result) if created else _node(reference, 204, None))
        return True, nodes

    def _node(self, request: Any, ids: dict[str, str]) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("body"), dict):
            return _failed("JSON_PARSER_ERROR", "a node needs a method, url and body")
        match = SOBJECT_URL.match(str(request.get("url", "")))
        fields = {}
        for name, value in request["body"].items():
            ref = REFERENCE.match(value) if isinstance(value, str) else None
            if ref is not None and ref.group(1) not in ids:
                return _failed("INVALID_REFERENCE", f"no earlier node {ref.group(1)}")
            fields[name] = ids[ref.group(1)] if ref is not None else value
        if match is None:
            return _failed("NOT_FOUND", "graphs take sObject rows only")
        sobject, row = match.groups()
        if request.get("method") == "POST" and row is None:
            return self._create({"attributes": {"type": sobject}, **fields})
        if request.get("method") == "PATCH" and row is not None:
            return self._update({"attributes": {"type": sobject},
                                 "id": urllib.parse.unquote(row), **fields})  # fmt: skip
        return _failed("METHOD_NOT_ALLOWED", "POST an sObject or PATCH a row")

    # -- writes (sObject Collections, allOrNone false) ----------------------------------------

    def _create(self, record: Any) -> dict[str, Any]:
        kind = (record.get("attributes") or {}).get("type") if isinstance(record, dict) else None
        if kind != "Individual":
            return _failed("INVALID_TYPE", "this sandbox creates Individuals only")
        if not record.get("LastName"):
            return _failed("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]")
        new_id = record_id("Individual", f"new-{len(self.individuals)}")
        self.individuals[new_id] = {"LastName": record["LastName"]}
        return {"id": new_id, "success": True, "errors": []}

    def _update(self, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            return _failed("MISSING_ARGUMENT", "id not specified")
        kind = (record.get("attributes") or {}).get("type")
        fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
        if kind == "Individual":
            target = self.individuals.get(record["id"])
            allowed = INDIVIDUAL_FIELDS
        elif kind == "Contact" and record["id"] in self.person_contacts:
            # a person contact's fields are its Person Account's (IndividualId is
            # PersonIndividualId)
            target = self.records[self.person_contacts[record["id"]]]
            allowed = {"PersonIndividualId"}
            fields = {"PersonIndividualId" if k == "IndividualId" else k: v
                      for k, v in fields.items()}  # fmt: skip
        else:
            stored = self.records.get(record["id"])
            target = stored if stored is not None and stored["type"] == kind else None
            allowed = {LINK_FIELD.get(str(kind), "")}
        if target is None:
            return _failed("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        suffix = "__pc" if kind == "Account" else "__c"  # see the module's docstring
        for name, value in fields.items():
            custom = name.endswith(suffix) and isinstance(value, bool)
            linking = name in allowed and kind != "Individual" and value in self.individuals
            flag = name in allowed and kind == "Individual" and isinstance(value, bool)
            if not (custom or linking or flag):
                return _failed("INVALID_FIELD", f"No such column '{name}' on entity '{kind}'")
        target.update(fields)
        return {"id": record["id"], "success": True, "errors": []}


def _node(reference: Any, status: int, body: Any) -> dict[str, Any]:
    return {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": reference}


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": []}]}
