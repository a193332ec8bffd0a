"""Request ids of their own ('<owner>~<hex>'): made and read back by one helper; the order of
an identity's sort keys (request references last)."""

import uuid

from optout.ops import keys as ops_keys
from optout.store import keys


def test_an_own_request_id_names_its_owner() -> None:
    owner = str(uuid.uuid4())
    made = keys.own_request_id(owner, "0123456789ab")
    assert made.startswith(keys.own_request_prefix(owner))
    assert keys.made_by(made) == owner


def test_a_request_s_own_id_has_no_owner() -> None:
    assert keys.made_by(str(uuid.uuid4())) is None


def test_a_chain_prefix_does_not_match_another_owner_starting_alike() -> None:
    # a backfill's chain reads its own jobs by prefix: "ab~" must not take "abc~..."
    assert not keys.own_request_id("abc", "0123456789ab").startswith(keys.own_request_prefix("ab"))


# -- request references sort last in an identity's partition (review s19 SC2) --------------

IDENTITY_FAMILIES = (keys.ASSERTED_PREFIX, keys.ASSERTS_PREFIX, keys.DELIVERY_PREFIX,
                     keys.LINK_PREFIX, keys.NODE_SK, keys.STATE_SK,
                     ops_keys.LEGACY_REF_PREFIX)  # fmt: skip


def _below_references(family: str) -> bool:
    """Every key of `family` (the family, then anything) sorts before every reference."""
    return family < ops_keys.REF_PREFIX and not ops_keys.REF_PREFIX.startswith(family)


def test_a_reference_sorts_after_every_other_item_of_an_identity() -> None:
    # the graph's readers Query `sk < XREF#`: every other item of an ID# partition is in range
    for family in IDENTITY_FAMILIES:
        assert _below_references(family), family
        assert family + "\U0010ffff" < ops_keys.ref_sk("2026-12-01T00:00:00.000Z", "r")


def test_every_sort_key_family_the_code_names_sorts_before_the_references() -> None:
    # a family added to either key module is checked too, whichever partition it is meant for
    named = {name: value for module in (keys, ops_keys) for name, value in vars(module).items()
             if name.endswith(("_SK", "_PREFIX")) and isinstance(value, str)}  # fmt: skip
    named.pop("REF_PREFIX")
    assert set(IDENTITY_FAMILIES) <= set(named.values())
    assert [name for name, value in named.items() if not _below_references(value)] == []


def test_a_reference_key_names_its_arrival_and_request() -> None:
    sk = ops_keys.ref_sk("2026-12-01T00:00:00.000Z", "r-1")
    assert sk == "XREF#2026-12-01T00:00:00.000Z#r-1" and ops_keys.is_reference(sk)
    old = ops_keys.legacy_ref_sk("2026-12-01T00:00:00.000Z", "r-1")
    assert old == "REQREF#2026-12-01T00:00:00.000Z#r-1" and ops_keys.is_reference(old)
    assert not ops_keys.is_reference(keys.STATE_SK)
