"""Request ids of their own ('<owner>~<hex>'): made and read back by one helper."""

import uuid

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
