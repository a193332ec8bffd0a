"""The processing purposes a consumer can opt out of."""

from typing import Final, Literal, get_args

Purpose = Literal["sale", "share", "targeted_advertising", "profiling"]
ALL_PURPOSES: Final[tuple[Purpose, ...]] = get_args(Purpose)

# A Global Privacy Control signal is an opt-out of sale and sharing (CCPA §7025) and of
# targeted advertising (the states' universal opt-out mechanisms); not of profiling.
GPC_PURPOSES: Final[tuple[Purpose, ...]] = ("sale", "share", "targeted_advertising")

OptOutMap = dict[Purpose, bool]


def opted_out(choices: OptOutMap) -> set[Purpose]:
    return {p for p, v in choices.items() if v}


def full_map(choices: OptOutMap) -> OptOutMap:
    """Every purpose present, defaulting to not opted out."""
    return {p: bool(choices.get(p, False)) for p in ALL_PURPOSES}
