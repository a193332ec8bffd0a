"""Who may call the IAM routes: a signer's ARN against the allow-list of a use."""

import pytest

from optout.access import CallerAllowList, principal_of

ROLE = "arn:aws:iam::123456789012:role/service/optout-bridge-linker"


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:sts::123456789012:assumed-role/optout-bridge-linker/backend-login",
        "arn:aws:sts::123456789012:assumed-role/optout-bridge-linker/other-session",
        "arn:aws:iam::123456789012:role/optout-bridge-linker",
    ],
)
def test_any_session_of_an_allowed_role_is_allowed(caller: str) -> None:
    allowed = CallerAllowList(linker=frozenset({principal_of(ROLE)}))
    assert allowed.allows("linker", caller)


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:sts::999999999999:assumed-role/optout-bridge-linker/backend",  # other account
        "arn:aws:sts::123456789012:assumed-role/optout-bridge-linker-x/backend",
        "arn:aws:iam::123456789012:user/optout-bridge-linker",  # a user of the same name
        "",
        None,
    ],
)
def test_anything_else_is_refused(caller: str | None) -> None:
    allowed = CallerAllowList(linker=frozenset({principal_of(ROLE)}))
    assert not allowed.allows("linker", caller)


def test_a_use_allows_only_its_own_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINKER_PRINCIPALS", ROLE)
    monkeypatch.setenv("OPERATOR_PRINCIPALS", "")
    allowed = CallerAllowList.from_env()
    caller = "arn:aws:sts::123456789012:assumed-role/optout-bridge-linker/s"
    assert allowed.allows("linker", caller)
    assert not allowed.allows("operator", caller)


def test_an_allowed_iam_user_is_matched_by_its_exact_arn_and_no_other_user_is() -> None:
    # an ARN that is not a role is its own principal: another user must not match it
    user = "arn:aws:iam::123456789012:user/ops/alice"
    allowed = CallerAllowList(operator=frozenset({principal_of(user)}))
    assert allowed.allows("operator", user)
    assert not allowed.allows("operator", "arn:aws:iam::123456789012:user/ops/mallory")
    assert not allowed.allows("operator", "arn:aws:iam::123456789012:role/ops")
