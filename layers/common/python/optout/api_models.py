"""Input and output models of the public HTTP contract (v1). Storage models live in store/."""

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from optout import jurisdictions
from optout.api_formats import DEVICE_ID_PATTERN, JURISDICTION_PATTERN
from optout.identifiers import IdType
from optout.purposes import Purpose

DeviceId = Annotated[
    str,
    Field(
        pattern=DEVICE_ID_PATTERN,
        description="First-party random device identifier set by banner.js.",
        examples=["3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"],
    ),
]


def _known_place(value: str) -> str:
    """A code of the right shape that names no real place (`ZZ`, `EU`, `US-ZZ`) is refused in
    the pattern's words; `UK` is kept as `GB` (optout/jurisdictions.py)."""
    code = jurisdictions.canonical(value)
    if code is None:
        raise PydanticCustomError("string_pattern_mismatch", "a real place's ISO 3166 code")
    return code


Jurisdiction = Annotated[
    str,
    Field(
        pattern=JURISDICTION_PATTERN,
        description="ISO 3166-2 code, e.g. US-CA, or a country's ISO 3166-1 alpha-2 code: "
        "a real country, and for the US a state, DC or an inhabited territory.",
        examples=["US-CA"],
    ),
    AfterValidator(_known_place),
]
Email = Annotated[str, Field(min_length=3, max_length=254, examples=["jane@example.com"])]
Phone = Annotated[str, Field(min_length=3, max_length=32, examples=["+14155550123"])]
CustomerId = Annotated[str, Field(min_length=1, max_length=128, examples=["cust-1234"])]
# JSON's true and false only: "on", "yes", "off" or 1 are refused, not read as a choice.
OptOutChoices = Annotated[
    dict[Purpose, StrictBool],
    Field(
        description=(
            "true = opted out (for limit_sensitive: the use of sensitive personal information "
            "is limited, CCPA §7027); a purpose left out is unchanged."
        )
    ),
]
RequestStatus = Literal["received", "processing", "completed", "failed", "denied"]
IdentityToken = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        description="A short-lived JWT (HS256) the site's login backend signed: it makes the "
        "identifiers it binds *verified* (README: Identity tokens).",
    ),
]


# Answers' times as the OpenAPI document states them (ISO 8601 UTC; a deadline is a day).
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Date = Annotated[str, Field(json_schema_extra={"format": "date"})]


def _absent(value: object) -> bool:
    return value is None


def _blank_is_absent(value: object) -> object:
    """An optional identifier sent as "" (many forms and agent tools send an unfilled input
    so) names nobody: absent, as a blank field of a form post is (http/raw_body.py)."""
    return None if value == "" else value


def _states_blank(schema: dict[str, Any]) -> None:
    any_of: list[dict[str, Any]] = schema["anyOf"]
    any_of.insert(-1, {"type": "string", "maxLength": 0, "description": "the same as absent"})


# The optional identifiers of a body: "" is absent too, and the OpenAPI document says so.
_BLANK = (BeforeValidator(_blank_is_absent), Field(json_schema_extra=_states_blank))
OptionalEmail = Annotated[Email | None, *_BLANK]
OptionalPhone = Annotated[Phone | None, *_BLANK]
OptionalCustomerId = Annotated[CustomerId | None, *_BLANK]
OptionalDeviceId = Annotated[DeviceId | None, *_BLANK]


class ApiModel(BaseModel):
    # Built on first use, not at import: a function builds only the models of the routes it
    # serves (the capture function never builds the admin ones), and a cold start is imports.
    model_config = ConfigDict(defer_build=True)


class StrictModel(ApiModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2048)


class IdentityIn(StrictModel):
    email: OptionalEmail = None
    customer_id: OptionalCustomerId = None
    phone: OptionalPhone = None


class ConsentIn(StrictModel):
    device_id: DeviceId
    opt_out: OptOutChoices = Field(default_factory=dict)
    gpc: StrictBool | None = Field(default=None, description="navigator.globalPrivacyControl")
    jurisdiction: Jurisdiction | None = None
    identity: IdentityIn | None = Field(
        default=None,
        description="Without a valid identity_token these identifiers are only *asserted*: "
        "they receive this device's opt-outs, nothing flows back.",
    )
    identity_token: Annotated[
        IdentityToken | None,
        *_BLANK,
        Field(
            description="Here it must name the posting browser (claim `device_sha256`), or "
            "it is refused: a token naming no device would link whichever browser posts it."
        ),
    ] = None
    confirm_opt_in: StrictBool | None = Field(
        default=None,
        description="true: the person confirmed opting back in (CCPA §7028). Without it a "
        "`false` never lifts an existing opt-out.",
    )
    page_url: Annotated[str, Field(max_length=2048)] | None = None
    policy_version: Annotated[str, Field(max_length=64)] | None = None


class ConsentOut(ApiModel):
    request_id: str
    device_id: str
    opt_out: dict[Purpose, bool]
    gpc_honored: bool


class ConsentStateOut(ApiModel):
    device_id: str
    opt_out: dict[Purpose, bool]
    gpc_honored: bool = Field(
        description="true when the bridge holds this device's GPC signal (a POST carried "
        "`Sec-GPC: 1`); a read never sets it"
    )
    updated_at: Timestamp | None
    gpc_signal: bool = Field(  # always answered: required in the schema, not defaulted
        description="true when this read carried `Sec-GPC: 1` (not stored; `gpc_honored` says "
        "whether a POST recorded the signal): a browser that sends the header without "
        "`navigator.globalPrivacyControl` (a proxy, an extension) is honoured by the banner",
    )


class AgentIn(StrictModel):
    """Who files for the consumer (CCPA §7026), kept in the request's evidence. Trimmed before
    the length check: a name of spaces names no agent, like an empty one."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    agent_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class OptOutIn(StrictModel):
    email: OptionalEmail = None
    phone: OptionalPhone = None
    customer_id: OptionalCustomerId = None
    device_id: OptionalDeviceId = None
    purposes: Annotated[list[Purpose], Field(min_length=1, max_length=5)] | None = Field(
        default=None,
        description=(
            "Defaults to sale, share, targeted_advertising and profiling; limit_sensitive "
            "(CCPA §7027) only when listed."
        ),
    )
    jurisdiction: Jurisdiction | None = None
    agent: AgentIn | None = Field(default=None, description="Set by an authorized agent.")
    identity_token: Annotated[IdentityToken | None, *_BLANK] = None
    page_url: Annotated[str, Field(max_length=2048)] | None = None
    policy_version: Annotated[str, Field(max_length=64)] | None = None


class OptOutOut(ApiModel):
    request_id: str
    status: RequestStatus
    received_at: Timestamp
    deadline: Date
    gpc_honored: bool = Field(
        description="true when the request carried `Sec-GPC: 1`: it was also recorded as an "
        "opt-out of sale, share and targeted_advertising (as POST /v1/consent answers)."
    )


class RequestStatusOut(ApiModel):
    """`status` and `systems_*` cover the systems that take an identifier type this request
    named itself, each holding its opt-out by a receipt of its own or by an earlier request's
    receipt for the same identities and purposes. Systems the request reached only through
    identifiers linked to the ones it named are left out here (the business's knowledge of
    who is linked to whom is not the requester's to read); the operator's record counts
    them. A system not asked because its vendor answered "no such person" for these
    identifiers within the last NoRecordQuietHours counts as done here, as that answer does on
    the request's own job: whether the vendors hold a person is not the requester's to read
    either (the operator's record does not count it and names it under `not_asked`). Until
    every system has answered (`processing`, or `denied` with jobs in flight) `systems_done`
    and `systems_failed` read 0: how many have answered would tell it too (the operator's
    record counts each). A request satisfied by earlier answers (receipts it cites, or the
    quiet period's) reads `processing` until its resolution plus the longest time those
    answers took from their last sending (at most 24 hours), and `completed_at` is that
    moment, not the resolution: whether the person had opted out before, or is held by the
    vendors, is not the requester's to read (the operator's record has the real time)."""

    request_id: str
    status: RequestStatus
    received_at: Timestamp
    deadline: Date
    completed_at: Timestamp | None = None
    systems_total: int
    systems_done: int
    systems_failed: int
    # Only on a denied request (CCPA §7026(e)): when, and the reason code (the operator's
    # explanation stays in the operators' record). Left out per field (exclude_if), not by a
    # model serializer: one typed as a dict made the OpenAPI schema an untyped map.
    denied_at: Timestamp | None = Field(
        default=None, exclude_if=_absent, description="Only on a denied request."
    )
    denial_reason: str | None = Field(
        default=None, exclude_if=_absent, description="Only on a denied request: the reason code."
    )
    # The calendar the deadline was counted in is no part of the answer: for a geolocated
    # request it can name the located state, which a holder of the request id is not told
    # (review s18 diff C3). The operator's record and the export carry it; the HTML page is
    # given it outside the dump (`page_calendar`) and names a zone only when it was stated.
    _calendar: str | None = PrivateAttr(default=None)
    _stated: bool = PrivateAttr(default=False)
    # The systems this view shows as retired (no longer used, before they confirmed): not in
    # the contract's counts, so a request they all were reads total 0, as one that needed no
    # system does. The page tells the two apart (review s22 diff B7); the JSON keeps its fields.
    _retired: int = PrivateAttr(default=0)
    # The systems done with part of the request: a type it named refused, or never sent (no
    # form of it the vendor can match; status.SystemProof.not_taken). Not in the contract's
    # counts (each is done); the page says "in part" (review s26 counsel F2, F3).
    _in_part: int = PrivateAttr(default=0)

    def with_calendar(self, calendar: str | None, stated: bool) -> "RequestStatusOut":
        """This status holding the calendar stored with its request (None before 2026-12-01)."""
        self._calendar, self._stated = calendar, stated
        return self

    def with_retired(self, systems: int) -> "RequestStatusOut":
        """This status with the number of systems it shows as retired."""
        self._retired = systems
        return self

    def with_in_part(self, systems: int) -> "RequestStatusOut":
        """This status with the number of systems done with part of the request."""
        self._in_part = systems
        return self

    def page_calendar(self) -> dict[str, Any]:
        """The calendar the HTML status page reads beside the dump."""
        return {"deadline_jurisdiction": self._calendar, "jurisdiction_stated": self._stated}

    def page_fields(self) -> dict[str, Any]:
        """What the HTML status page reads beside the dump (webform_pages.status_page)."""
        return self.page_calendar() | {
            "systems_retired": self._retired,
            "systems_in_part": self._in_part,
        }


# Where the call states no country (a backend's links, an operator's reads), a phone is E.164:
# a national number read as a US one can be another country's, a stranger's (review s21 P1).
IdentifierValue = Annotated[
    str,
    Field(
        min_length=1,
        max_length=254,
        description="The identifier; a phone in E.164 (+ and country code): a national "
        "number is refused, since the call states no country.",
    ),
]


class IdentityRef(StrictModel):
    type: IdType
    value: IdentifierValue


class LinkIn(StrictModel):
    a: IdentityRef
    b: IdentityRef


class IdentityLinksIn(StrictModel):
    links: Annotated[list[LinkIn], Field(min_length=1, max_length=100)]


class IdentityLinksOut(ApiModel):
    request_id: str
    links_accepted: int


class ErrorDetail(ApiModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(ApiModel):
    error: ErrorDetail


class AdminLookupIn(StrictModel):
    """In the body, not the URL: identifiers never appear in URLs or access logs."""

    type: IdType
    value: IdentifierValue


class IdentityKeyOut(ApiModel):
    """An identity as operators see it: its type and keyed hash, never its value."""

    type: IdType
    key: str


class HoldOut(ApiModel):
    hold_id: str
    status: Literal["held", "releasing", "released", "rejected"]
    held_at: str
    request_id: str
    a: IdentityKeyOut
    b: IdentityKeyOut
    cluster_a: int
    cluster_b: int
    cap: int
    # cluster_cap: past the cap; second_account: a login joining a browser linked to one
    # account to another (a release links them; reject if they are two people).
    reason: Literal["cluster_cap", "second_account"] = "cluster_cap"
    decided_at: str | None = None
    decided_by: str | None = None  # the operator's ARN (holds decided before 1.2: none)
    release_request_id: str | None = None  # the hold_release event, for `optout status`


class HoldsOut(ApiModel):
    holds: list[HoldOut]


class OperatorActionOut(ApiModel):
    """A review decision or a replay, accepted; the resolver carries it out from the stream."""

    request_id: str | None = None
    hold_id: str | None = None
    system: str | None = None
    status: str
    # A backfill: the earlier backfills of the same system still open (a step not run yet or
    # a job not answered yet), by id; a `--resend` sends their people again. Absent if none.
    open_backfills: list[str] | None = None


DenialCode = Literal["suspected_fraud", "not_a_consumer", "outside_jurisdiction", "other"]


class DenialIn(StrictModel):
    """An operator's denial (CCPA §7026(e): a documented good-faith belief of fraud). `reason`
    is kept as evidence for 24 months and read by counsel and regulators: describe, never
    quote the person (no email addresses, phone numbers or other identifiers)."""

    reason_code: DenialCode
    reason: Annotated[
        str, Field(min_length=10, max_length=500, description="Why, without identifiers.")
    ]


class RetireIn(StrictModel):
    """An operator's retirement of a system (`optout retire`): why its open jobs are no longer
    owed (the contract ended, the system was removed). Kept as evidence (§7101), checked like a
    denial's reason: describe, never quote a person."""

    reason: Annotated[
        str, Field(min_length=10, max_length=500, description="Why, without identifiers.")
    ]


class RetireOut(ApiModel):
    request_id: str  # the operator event this call recorded
    system: str
    status: Literal["retired"]
    retired_at: str  # of the first retirement (a later retire is kept after it: retired_again)
    retirement_id: str  # the event that recorded the first retirement
    already_retired: bool  # True: the first retire stands; this call is kept after it


class DenialOut(ApiModel):
    request_id: str
    status: Literal["denied"]
    denied_at: str
    reason_code: DenialCode
    # The systems whose jobs of this request were already made and not failed when the denial
    # was written: they may still reach the vendor (a denial stops no job already made).
    systems_under_way: list[str] = []
    # Whether the resolver had recorded its resolution of the request: false, a run under way
    # may still make jobs, and adds their systems to the denial's record (`optout status`).
    resolved: bool = False


class ImportIn(StrictModel):
    """A batch of historical opt-outs (docs/operations.md, "Importing"). Rows are checked one
    by one: a bad row is reported with its line and field, never the whole batch refused."""

    # Strict: a JSON true is not the number 1 here (the document says string, integer or null).
    rows: Annotated[
        list[dict[str, StrictStr | StrictInt | None]], Field(min_length=1, max_length=100)
    ]


class RejectedRow(ApiModel):
    line: int | None
    field: str
    code: str
    reason: str  # never the value


class ImportedRow(ApiModel):
    """A row taken (stored now, or a duplicate of one stored before): the request id its
    `external_id` derives to, for `optout status` (the other tool's id, never an identifier)."""

    line: int | None
    external_id: str
    request_id: str


class ImportOut(ApiModel):
    stored: int
    duplicates: int
    rejected: list[RejectedRow]
    request_ids: list[ImportedRow] = Field(default_factory=list)


class ExportIdentityIn(AdminLookupIn):
    """One identity's records; the identifier in the body, never the URL."""

    cursor: Annotated[str, Field(max_length=2048)] | None = None


def _day_only(value: object) -> object:
    """A day as YYYY-MM-DD and nothing more: a datetime would be read as its day, silently
    (and a local time's day is not the UTC day the export counts in)."""
    if isinstance(value, str) and not _DAY.fullmatch(value):
        raise PydanticCustomError("string_pattern_mismatch", "a day as YYYY-MM-DD")
    return value


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
Day = Annotated[date, BeforeValidator(_day_only)]


class ExportRangeIn(StrictModel):
    """Requests received from `from` to `to` (inclusive, UTC days: a request's day is the UTC
    date of its `received_at`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Day = Field(alias="from")
    to: Day
    cursor: Annotated[str, Field(max_length=2048)] | None = None


class ExportProgressOut(ApiModel):
    done: int
    total: int
    unit: Literal["requests", "days"]


class ExportSealOut(ApiModel):
    """The last page's seal (docs/evidence-integrity.md, "Exports"): what was asked (an
    identity by type and keyed hash, or the range's days), the first page's server time, how
    many records the pages held and the last link of the SHA-256 chain over them."""

    export: dict[str, str]
    exported_at: str
    records: int
    records_sha256: str


class ExportRangePageOut(ApiModel):
    """One page of an export, as the route answers it (documented only: the route returns the
    service's dict). Each record is an object with a `record` kind (README, docs/operations.md);
    `cursor` is null on the last page."""

    records: list[dict[str, Any]]
    cursor: str | None
    progress: ExportProgressOut
    seal: ExportSealOut | None = Field(
        default=None, description="On the last page only: the export's digest, logged too."
    )


class ExportIdentityPageOut(ExportRangePageOut):
    complete_through: str | None = Field(
        description="Requests received after this time may not be listed yet (null before "
        "the deadline watch first ran)."
    )


class RedriveOut(ApiModel):
    system: str
    moved: int
    remaining: int
    request_id: str | None = None  # the event recording who moved them (none if moved is 0)
