"""The processing purposes a consumer can opt out of (or, for sensitive data, limit)."""

from typing import Final, Literal, get_args

Purpose = Literal["sale", "share", "targeted_advertising", "profiling", "limit_sensitive"]
ALL_PURPOSES: Final[tuple[Purpose, ...]] = get_args(Purpose)

# "Do Not Sell or Share" and the states' opt-outs: what a webform opt-out without `purposes`
# covers. Limiting the use of sensitive personal information (CCPA §7027) is a different
# right with its own choice, so it is only ever set when asked for.
SALE_SHARE_PURPOSES: Final[tuple[Purpose, ...]] = (
    "sale",
    "share",
    "targeted_advertising",
    "profiling",
)

# A Global Privacy Control signal is an opt-out of sale and sharing (CCPA §7025) and of
# targeted advertising (the states' universal opt-out mechanisms); not of profiling, and not
# a request to limit sensitive data.
GPC_PURPOSES: Final[tuple[Purpose, ...]] = ("sale", "share", "targeted_advertising")

OptOutMap = dict[Purpose, bool]


def opted_out(choices: OptOutMap) -> set[Purpose]:
    return {p for p, v in choices.items() if v}


def full_map(choices: OptOutMap) -> OptOutMap:
    """Every purpose present, defaulting to not opted out."""
    return {p: bool(choices.get(p, False)) for p in ALL_PURPOSES}
