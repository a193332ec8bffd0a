"""Read side of the public API: the banner's effective state and a request's status."""

from datetime import UTC, datetime

from optout import identifiers as ids
from optout.api_models import ConsentStateOut, RequestStatusOut
from optout.errors import NotFound
from optout.purposes import full_map
from optout.status import aggregate
from optout.store.busy import NOT_SERVED, answered_as_unavailable
from optout.store.proof import load_with_proof
from optout.store.state import get_state
from optout.store.table import Table


class QueryService:
    def __init__(self, table: Table, hash_key: bytes) -> None:
        self._table = table
        self._secret = hash_key

    def consent_state(self, device_id: str, gpc_signal: bool = False) -> ConsentStateOut:
        """One read: the state item the resolver maintains for every identity in a cluster.
        `gpc_signal`: whether this read carried `Sec-GPC: 1`, answered as it is (not stored)."""
        device = ids.Identifier("device_id", ids.normalise_device_id(device_id))
        with answered_as_unavailable("state store", NOT_SERVED):
            state = get_state(self._table, "device_id", ids.lookup_key(self._secret, device))
        if state is None:
            return ConsentStateOut(
                device_id=device_id,
                opt_out=full_map({}),
                gpc_honored=False,
                updated_at=None,
                gpc_signal=gpc_signal,
            )
        return ConsentStateOut(
            device_id=device_id,
            opt_out=full_map(state.get("opt_out", {})),
            gpc_honored=bool(state.get("gpc", False)),
            updated_at=state.get("updated_at"),
            gpc_signal=gpc_signal,
        )

    def request_status(self, request_id: str) -> RequestStatusOut:
        # Strongly consistent: a consumer checking right after the 202 must not be told that
        # no such request exists (an eventually consistent read may not see it yet).
        with answered_as_unavailable("request store", NOT_SERVED):
            items, covering = load_with_proof(self._table, request_id, consistent=True, public=True)
        status = aggregate(request_id, items, covering, public=True, now=read_at())
        if status is None:
            raise NotFound("no request with this request_id", field="request_id")
        return status


def read_at() -> datetime:
    """The moment a status is read: what the public view compares the replayed answers with
    (`status.replayed_until`); tests move it."""
    return datetime.now(UTC)
