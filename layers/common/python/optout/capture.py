"""Capture: turn a validated API request into one stored event (the hot path: one write).

Capture also decides how far each identifier is trusted (events.Role): the requester's own
device, identifiers a valid identity token binds (verified, linked both ways), and identifiers
merely typed or sent without a token (asserted: they get opt-outs, nothing flows back). The
resolver applies the rules; capture only records the facts.
"""

import hashlib
import hmac
import uuid
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from optout import identifiers as ids
from optout.deadlines import DEFAULT_JURISDICTION, deadline_at, strictest_deadline
from optout.errors import Conflict, InvalidInput
from optout.events import CapturedEvent, EventType, KeyedIdentifier, Role, Source, fingerprint
from optout.evidence import RequestContext, evidence, jurisdiction_stated, sanitise_agent
from optout.identity_token import (
    DeviceNotSent,
    InvalidToken,
    StaleToken,
    TokenVerifier,
    VerifiedIdentity,
)
from optout.purposes import GPC_PURPOSES, SALE_SHARE_PURPOSES, OptOutMap
from optout.settings import Settings
from optout.store.busy import AWS_ERRORS, busy, unavailable
from optout.store.events import find_event, put_event
from optout.store.table import Table
from optout.timestamps import iso

if TYPE_CHECKING:  # the admin function's route; the public routes import no pydantic model
    from optout.api_models import IdentityLinksIn, IdentityRef

# A body of the public routes as its model dumps it (`model_dump(mode="json")`: every field,
# defaults filled in), from the Event Handler's model or the hot routes' check
# (optout/http/hot_bodies.py): the domain takes plain data, so a banner opt-out's container
# never imports pydantic (docs/decisions.md, "The hot bodies without pydantic").
Body = dict[str, Any]


# Records are NamedTuples, not dataclasses: a class made by @dataclass costs about a
# millisecond at import (it compiles its methods), and this module is on every cold start.
class Captured(NamedTuple):
    """What the API answers, and whether this call stored a new event (False on a replay).
    `calendar` (the one the deadline was counted in, as stored) and `stated` (the requester
    named it) are for the HTML page only: the JSON answer names no calendar (review s18 C3)."""

    response: dict[str, Any]
    created: bool
    calendar: str | None = None
    stated: bool = False

    def page_answer(self) -> dict[str, Any]:
        """What the HTML confirmation page reads (webform_pages.confirmation_page)."""
        return self.response | {
            "deadline_jurisdiction": self.calendar,
            "jurisdiction_stated": self.stated,
        }


class _Draft(NamedTuple):
    """Everything an event needs that the route decided; _store adds ids, time and evidence."""

    event_type: EventType
    source: Source
    payload: dict[str, Any]
    choices: OptOutMap
    gpc: bool
    identifiers: tuple[KeyedIdentifier, ...]
    jurisdiction: str | None
    page_url: str | None
    policy_version: str | None
    # (request id, deadline, the jurisdiction whose calendar counted it) -> the answer
    answer: Callable[[str, date, str], dict[str, Any]]
    links: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...] = ()  # verified only
    roles: tuple[Role, ...] = ()
    asserts: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...] = ()
    confirm_opt_in: bool = False
    token: VerifiedIdentity | None = None
    # Whose Idempotency-Key this is: keyed hashes of who the body names, so a key someone else
    # learned and used first names another request, neither answering for nor blocking this one.
    caller: str = ""
    # Why the request's identity token was left out (expired, already used), for the evidence.
    token_refused: str | None = None


class _Trust(NamedTuple):
    """The identifiers of one request, each with its role, and the edges they make."""

    identifiers: tuple[KeyedIdentifier, ...]
    roles: tuple[Role, ...]
    links: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...]
    asserts: tuple[tuple[KeyedIdentifier, KeyedIdentifier], ...]


class CaptureService:
    def __init__(
        self, table: Table, settings: Settings, hash_key: bytes, tokens: TokenVerifier | None
    ) -> None:
        """`tokens` None: this caller takes no identity tokens (the admin function's links)."""
        self._table = table
        self._settings = settings
        self._secret = hash_key
        self._tokens = tokens

    def record_consent(self, body: Body, ctx: RequestContext) -> Captured:
        """`body`: a `ConsentIn`, dumped."""
        gpc = ctx.gpc_header or bool(body["gpc"])
        choices: OptOutMap = dict(body["opt_out"])
        if gpc:  # the signal wins over whatever the body says (CCPA §7025(c))
            choices.update(dict.fromkeys(GPC_PURPOSES, True))
        region = _region_of(body["jurisdiction"] or ctx.edge_jurisdiction)
        device_id: str = body["device_id"]
        device = self._key(ids.Identifier("device_id", ids.normalise_device_id(device_id)))
        token = self._verify(body["identity_token"], ctx, device_id)
        if token is not None and token.device_digest is None:
            # A token naming no browser would link whichever browser posts it first to the
            # person for good, who could then read their choices (review s30 stranger L1).
            raise InvalidToken(NAMES_NO_DEVICE)
        typed = self._identity(body["identity"] or {}, region, "identity.")
        trust = self._trust(device, token, typed)
        source: Source = "gpc" if gpc else "banner"

        # What this request records: an unconfirmed `false` lifts nothing, so it is left out
        # (a purpose left out is unchanged), as a banner must not read it as the new state.
        recorded = choices if body["confirm_opt_in"] else {p: v for p, v in choices.items() if v}

        def answer(request_id: str, _deadline: date, _calendar: str) -> dict[str, Any]:
            # ConsentOut, dumped (tests/unit/test_capture_answers.py holds the two together)
            return {
                "request_id": request_id,
                "device_id": device_id,
                "opt_out": dict(recorded),
                "gpc_honored": gpc,
            }

        draft = _Draft(
            "consent", source, body, choices, gpc, trust.identifiers, body["jurisdiction"],
            body["page_url"], body["policy_version"], answer, trust.links, trust.roles,
            trust.asserts, bool(body["confirm_opt_in"]), token, device.key,
        )  # fmt: skip
        return self._store(draft, ctx)

    def record_opt_out(self, body: Body, ctx: RequestContext) -> Captured:
        """`body`: an `OptOutIn`, dumped."""
        region = _region_of(body["jurisdiction"] or ctx.edge_jurisdiction)
        typed = self._identity({k: body[k] for k in ("email", "phone", "customer_id")}, region)
        device_id: str | None = body["device_id"]
        device = (
            self._key(ids.Identifier("device_id", ids.normalise_device_id(device_id)))
            if device_id
            else None
        )
        # An opt-out needs no token: a stale one (the webform left open, or its token used by
        # the page's banner first) is left out rather than costing the person their opt-out,
        # when the form names the person itself: a typed identifier, not the browser alone
        # (the person the token named would reach no system). So is one our own token keys
        # cannot check (TokenUnverifiable: the secret mistyped), and one naming a device sent
        # without it (DeviceNotSent). A forged one is still refused.
        stale: str | None = None
        try:
            token = self._verify(body["identity_token"], ctx, device_id)
        except StaleToken as refused:
            if not typed:
                raise
            token, stale = None, refused.message
        if not typed and device is None and token is None:
            raise InvalidInput(
                "at least one identifier is required: email, phone, customer_id or device_id",
                field="email",
            )
        trust = self._trust(device, token, typed)
        purposes = body["purposes"] or list(SALE_SHARE_PURPOSES)
        choices: OptOutMap = dict.fromkeys(purposes, True)
        gpc = ctx.gpc_header
        if gpc:
            choices.update(dict.fromkeys(GPC_PURPOSES, True))
        # An agent's request stays `agent` with GPC too (`gpc` is recorded beside it): who
        # filed it is what counsel asks about (the agent's evidence, in _store).
        source: Source = "agent" if body["agent"] else ("gpc" if gpc else "webform")

        def answer(request_id: str, deadline: date, calendar: str) -> dict[str, Any]:
            # OptOutOut, dumped (tests/unit/test_capture_answers.py holds the two together),
            # and the calendar, kept in the stored answer only (Captured drops it)
            return {
                "request_id": request_id,
                "status": "received",
                "received_at": iso(ctx.received_at),
                "deadline": deadline.isoformat(),
                "deadline_jurisdiction": calendar,
                "gpc_honored": gpc,
            }

        draft = _Draft(
            "opt_out", source, body, choices, gpc, trust.identifiers, body["jurisdiction"],
            body["page_url"], body["policy_version"], answer, trust.links, trust.roles,
            trust.asserts, False, token, _caller(trust), stale,
        )  # fmt: skip
        try:
            return self._store(draft, ctx)
        except StaleToken as used:  # the token made another request: this one goes without it
            if not typed:
                raise
            bare = self._trust(device, None, typed)
            return self._store(
                draft._replace(identifiers=bare.identifiers, links=bare.links, roles=bare.roles,
                               asserts=bare.asserts, token=None, caller=_caller(bare),
                               token_refused=used.message),
                ctx,
            )  # fmt: skip

    def record_links(self, body: "IdentityLinksIn", ctx: RequestContext) -> Captured:
        # No default region: a backend's call carries no country of the person (on IAM it
        # skips CloudFront, so it was always the US), and a link is verified both ways, so a
        # national number read as another country's would join a stranger to the cluster.
        pairs: list[tuple[KeyedIdentifier, KeyedIdentifier]] = []
        seen: set[frozenset[str]] = set()
        for index, link in enumerate(body.links):
            a = self._link_end(link.a, f"links[{index}].a.value")
            b = self._link_end(link.b, f"links[{index}].b.value")
            # A link to itself, or one the call already made (either way round: a link has no
            # direction), is not a link more (review s35 outside L1: it was counted and stored)
            pair = frozenset((a.pk, b.pk))
            if a.pk != b.pk and pair not in seen:
                seen.add(pair)
                pairs.append((a, b))

        def answer(request_id: str, _deadline: date, _calendar: str) -> dict[str, Any]:
            from optout.api_models import IdentityLinksOut  # noqa: PLC0415 - the admin route's

            return IdentityLinksOut(request_id=request_id, links_accepted=len(pairs)).model_dump()

        draft = _Draft(
            "links", "backend", body.model_dump(mode="json"), {}, False, (), None, None, None,
            answer, links=tuple(pairs),
        )  # fmt: skip
        return self._store(draft, ctx)

    # -- helpers -----------------------------------------------------------------------

    def _link_end(self, end: "IdentityRef", field: str) -> KeyedIdentifier:
        """One end of a link, a refusal naming that end (told apart by where it failed: two
        ends of one type, two emails say, are not told apart by the refusal's type)."""
        try:
            return self._key(ids.normalise(end.type, end.value))
        except InvalidInput as refused:
            raise InvalidInput(refused.message, field=field) from None

    def _key(self, identifier: ids.Identifier) -> KeyedIdentifier:
        return KeyedIdentifier.of(self._secret, identifier)

    def _verify(
        self, token: str | None, ctx: RequestContext, device_id: str | None
    ) -> VerifiedIdentity | None:
        if token is None:
            return None
        if self._tokens is None:
            raise InvalidToken("identity_token is not accepted on this route")
        verified = self._tokens.verify(token, ctx.received_at)
        if device_id is None and verified.device_digest is not None:
            # Posted without the browser it names: whoever saw it before its page used it
            # (review s31 stranger F2). Never used, so the page can still use it.
            raise DeviceNotSent(SENDS_NO_DEVICE)
        if device_id is not None and not verified.binds_device(device_id):
            raise InvalidToken("identity_token was issued for another device")
        return verified

    def _trust(
        self,
        device: KeyedIdentifier | None,
        token: VerifiedIdentity | None,
        typed: list[KeyedIdentifier],
    ) -> _Trust:
        """Roles and edges: the device and token-bound identifiers are linked both ways
        (verified); typed ones are asserted by the request's device, or stand alone without
        one, token or not: a token's person never asserts them, or whoever posted a token seen
        before its page used it would read that person's opt-outs, with their times, on the
        email he typed, for good (review s31 stranger F2). A token naming no
        device links none: anyone who saw it could post it with their own browser's id and read
        the person's choices for good (review s30 trust F3). That device keeps its own
        choices, and this request's reach both (their roles); it asserts nothing of the
        token's identifiers (review s30 final F1)."""
        verified = [self._key(i) for i in token.identifiers] if token else []
        bound = {v.pk for v in verified}
        asserted = [t for t in typed if t.pk not in bound]
        device_bound = token is not None and token.device_digest is not None
        anchor = device if device and (device_bound or not verified) else None
        anchor = anchor or (verified[0] if verified else None)
        identifiers: list[KeyedIdentifier] = [device] if device else []
        roles: list[Role] = ["device"] if device else []
        identifiers += verified + asserted
        verified_roles: list[Role] = ["verified"] * len(verified)
        asserted_roles: list[Role] = ["asserted"] * len(asserted)
        roles += verified_roles + asserted_roles
        links = tuple((anchor, v) for v in verified if anchor is not None and v.pk != anchor.pk)
        # Only what the requester typed: a device-less token's person is not asserted by the
        # device either, which would carry the browser's cluster's opt-outs (another account's,
        # on a shared browser) to that person for them to read (review s30 final F1).
        asserts = tuple((device, a) for a in asserted) if device is not None else ()
        return _Trust(tuple(identifiers), tuple(roles), links, asserts)

    def _identity(self, given: Body, region: str, path: str = "") -> list[KeyedIdentifier]:
        """`path`: where the identifiers sit in the body, for the refusal's `field`."""
        found: list[KeyedIdentifier] = []
        for id_type in ids.ID_TYPES:
            raw = given.get(id_type)
            if raw:
                try:
                    found.append(self._key(ids.normalise(id_type, raw, region)))
                except InvalidInput as refused:
                    raise InvalidInput(refused.message, field=path + id_type) from None
        return found

    def _request_id(
        self, route: str, caller: str, idempotency_key: str | None, token_use: str | None
    ) -> str:
        if token_use:
            # One token, one request, on any route: a second use finds this id taken.
            named = f"token:{token_use}"
        elif idempotency_key is None:
            return str(uuid.uuid4())
        else:
            # Same key, route and caller -> same request id -> the conditional put dedupes it.
            named = f"idem:{route}:{caller}:{idempotency_key}"
        digest = hmac.new(self._secret, named.encode(), hashlib.sha256)
        return str(uuid.UUID(bytes=digest.digest()[:16], version=4))

    def _store(self, draft: _Draft, ctx: RequestContext) -> Captured:
        token_use = draft.token.use_key if draft.token is not None else None
        request_id = self._request_id(
            draft.event_type, draft.caller, ctx.idempotency_key, token_use
        )
        digest = fingerprint(self._secret, draft.event_type, _as_meant(draft))
        # The values this request names, redacted where the caller's free text repeats one (a
        # customer id in the page path: it has no shape of its own). Not the device id: the
        # banner's random value, on every banner call (the hot path), is no person's PII.
        named = [i.value for i in draft.identifiers if i.type != "device_id"]
        record: dict[str, Any] = evidence(
            ctx,
            jurisdiction=draft.jurisdiction,
            page_url=draft.page_url,
            policy_version=draft.policy_version or self._settings.policy_version,
            store_ip=self._settings.store_ip_address,
            deployed_policy_version=self._settings.policy_version,
            named=named,
        )
        if draft.token is not None:
            record["identity_token"] = draft.token.evidence()
        elif draft.token_refused:
            record["identity_token"] = {"left_out": draft.token_refused}
        record["agent"] = sanitise_agent(draft.payload.get("agent"), named)  # opt-outs only
        if draft.jurisdiction:  # stated by the caller: its own rule
            deadline = deadline_at(ctx.received_at, draft.jurisdiction)
            calendar = draft.jurisdiction
        else:  # geolocated (or unknown): the place of the request, not the residence
            located = record["jurisdiction"]
            deadline, calendar = strictest_deadline(ctx.received_at, located)
            calendar = calendar if located else DEFAULT_JURISDICTION
        event = CapturedEvent(
            request_id=request_id,
            event_type=draft.event_type,
            source=draft.source,
            received_at=ctx.received_at,
            deadline=deadline,
            opt_out=draft.choices,
            gpc=draft.gpc,
            identifiers=draft.identifiers,
            links=draft.links,
            evidence=record,
            fingerprint=digest,
            response=draft.answer(request_id, deadline, calendar),
            roles=draft.roles,
            asserts=draft.asserts,
            confirm_opt_in=draft.confirm_opt_in,
        )
        try:
            stored, created = put_event(
                self._table, event.to_item(self._settings.record_retention_days)
            )
        except AWS_ERRORS as error:
            if not busy(error):
                raise
            stored, created = self._committed_anyway(request_id, ctx, error), True
        if not created and not self._same_request(stored.get("fingerprint"), digest, draft):
            if token_use:  # the banner sends the choice again without it (web/banner.js)
                raise StaleToken("identity_token was already used for another request")
            raise Conflict(
                "Idempotency-Key was already used for a different request", "Idempotency-Key"
            )
        response: dict[str, Any] = stored["response"]
        if draft.event_type == "opt_out" and "gpc_honored" not in response:
            # Stored before the opt-out answer had the field (2026-12-01): a retry with the
            # same key gets the answer OptOutOut describes, from the event's own record.
            response = {**response, "gpc_honored": bool(stored.get("gpc"))}
        # The answer is stored with its calendar (for the operator's record and the export);
        # the caller is not told it: a geolocated one names where the person is (s18 C3).
        kept = response.get("deadline_jurisdiction")
        return Captured(
            response={k: v for k, v in response.items() if k != "deadline_jurisdiction"},
            # The answer to our write lost after it committed: botocore sent it again, and its
            # condition found the item this call wrote (this request's arrival instant, to the
            # millisecond). A capture, not a replay: CaptureSurgeAlarm counts it (s17 F7).
            created=created or _written_by(stored, ctx),
            calendar=str(kept) if kept else None,
            stated=jurisdiction_stated(stored),
        )

    def _same_request(self, stored: object, digest: str, draft: _Draft) -> bool:
        """Whether the event found under this request id was this request. Events stored
        before 2026-12-02 hold the fingerprint of the body as sent (identifiers as typed):
        read only when the new one differs, so their retries are still retries."""
        if stored == digest:
            return True
        as_sent = {"body": draft.payload, "gpc": draft.gpc}
        return stored == fingerprint(self._secret, draft.event_type, as_sent)

    def _committed_anyway(
        self, request_id: str, ctx: RequestContext, error: Exception
    ) -> dict[str, Any]:
        """After a busy answer: our write may have committed with its answer lost, and the
        retries then failed too. One consistent read tells: the item holding this call's
        arrival instant is ours (a capture); else nothing was recorded (our 503). Review s17
        diff-api L-M3: a stored request was answered "could not be recorded", and a form
        post sent again (no Idempotency-Key) became a second request."""
        try:
            stored = find_event(self._table, request_id)
        except AWS_ERRORS:
            stored = None
        if stored is None or not _written_by(stored, ctx):
            raise unavailable(error, "event store", NOT_RECORDED) from error
        return stored


def _written_by(stored: dict[str, Any], ctx: RequestContext) -> bool:
    """Whether the event item found is the one this call wrote: it holds this request's
    arrival instant, to the millisecond (a replay with the same key arrived at another)."""
    return stored.get("received_at") == iso(ctx.received_at)


NOT_RECORDED = "the request could not be recorded just now: send it again"
SENDS_NO_DEVICE = (
    "identity_token names a device (claim device_sha256 or device_id): send the device_id it "
    "names with it"
)
NAMES_NO_DEVICE = (
    "identity_token names no device: on POST /v1/consent a token must carry the claim "
    "device_sha256 (or device_id) of the browser that posts it"
)


# Where the public bodies carry identifiers as typed: the fingerprint reads them normalised.
_TYPED_IDENTIFIERS = frozenset({"email", "phone", "customer_id", "device_id", "identity"})


def _as_meant(draft: _Draft) -> dict[str, Any]:
    """What tells a retry from another request under one Idempotency-Key: the body with its
    identifiers as the request keys them (normalised, keyed, with their roles), not as typed,
    so `Jane@Example.com ` and `jane@example.com` are one request, as they are one identifier
    and one key scope (`caller`; review s23 C4). The rest of the body and the GPC signal as
    they were: another purpose, page or signal is still another request."""
    body = {k: v for k, v in draft.payload.items() if k not in _TYPED_IDENTIFIERS}
    named = [[i.pk, role] for i, role in zip(draft.identifiers, draft.roles, strict=True)]
    return {"body": body, "gpc": draft.gpc, "identifiers": named}


def _caller(trust: _Trust) -> str:
    return ",".join(sorted(i.key for i in trust.identifiers))


def _region_of(jurisdiction: str | None) -> str:
    """Default phone region: the country part of the jurisdiction, else US."""
    return jurisdiction.split("-")[0] if jurisdiction else "US"
