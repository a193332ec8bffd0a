"""What the evidence keeps of the caller's free text (hypothesis): a phone number written in
groups or an email address spelled out, however a careless or hostile client puts it in a
user agent's product token, a page path's segment or the page's host, is not kept; and the
versions browsers and apps send stay readable (optout/evidence.py, optout/identifier_text.py;
review s37 closing note: `App/415.555.0132` and `jane_at_example.com` were kept)."""

from hypothesis import example, given
from hypothesis import strategies as st

from optout.evidence import sanitise_page_url, sanitise_user_agent

# A NANP number's groups: area and exchange codes start with 2-9, the line is any 4 digits.
NXX = st.builds(lambda first, rest: f"{first}{rest:02d}", st.integers(2, 9), st.integers(0, 99))
LINE = st.integers(0, 9999).map(lambda n: f"{n:04d}")
SEP = st.sampled_from(list(".-_+"))


@st.composite
def grouped_phones(draw: st.DrawFn) -> str:
    """`415.555.0132`, `1.415-555_0132`, `44.20.7946.0958`, `01.23.45.67.89`: a NANP number
    with any one-character separators (and maybe its country code), a UK or French one."""
    shape = draw(st.sampled_from(["nanp", "uk", "fr"]))
    if shape == "nanp":
        groups = [draw(NXX), draw(NXX), draw(LINE)]
        if draw(st.booleans()):
            groups.insert(0, "1")
    elif shape == "uk":
        groups = ["44", "20", draw(LINE), draw(LINE)]
    else:
        groups = ["0" + str(draw(st.integers(1, 9)))]
        groups += [f"{draw(st.integers(0, 99)):02d}" for _ in range(4)]
    text = groups[0]
    for group in groups[1:]:
        text += draw(SEP) + group
    return text


# A version before or after the number: `1.0.` + phone, phone + `.1`
BEFORE = st.sampled_from(["", "1.0.", "2.", "10.3+", "5.1-"])
AFTER = st.sampled_from(["", ".1", ".0.7", "-beta", "+build"])
LOCAL = st.from_regex(r"[a-z][a-z0-9]{0,7}(\.[a-z0-9]{1,5})?", fullmatch=True)
HOSTS = st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True)
TLDS = st.sampled_from(["com", "org", "co.uk", "net"])
# An at sign as a careless or hostile client writes it where no space may go, and the dots
AT_SIGNS = st.sampled_from(
    ["_at_", "_AT_", "(at)", "[at]", "{at}", "%40", "%2540", "\uff20", "\ufe6b", "&#64;",
     "&#x40;", "&commat;", "%26%2364%3B"]
)  # fmt: skip
DOTS = st.sampled_from([".", "_dot_", "-DOT-", "(dot)", "%2E"])
BROWSER = "Mozilla/5.0 AppleWebKit/537.36"


@st.composite
def spelled_emails(draw: st.DrawFn) -> str:
    dot = draw(DOTS)
    return draw(LOCAL) + draw(AT_SIGNS) + draw(HOSTS) + dot + draw(TLDS).replace(".", dot)


@given(phone=grouped_phones(), before=BEFORE, after=AFTER)
@example(phone="415.555.0132", before="", after="")
@example(phone="1.415.555.0132", before="", after="")
def test_a_product_version_holding_a_grouped_phone_is_dropped(
    phone: str, before: str, after: str
) -> None:
    assert sanitise_user_agent(f"{BROWSER} App/{before}{phone}{after}") == BROWSER


@given(phone=grouped_phones())
def test_a_page_path_segment_or_host_holding_a_grouped_phone_is_redacted(phone: str) -> None:
    assert sanitise_page_url(f"https://shop.example/call/{phone}/x") == (
        "https://shop.example/call/(redacted)/x"
    )
    dotted = phone.replace("-", ".").replace("_", ".").replace("+", ".")
    assert sanitise_page_url(f"https://{dotted}.sms.example/x") == "https://(redacted)/x"


@given(email=spelled_emails())
@example(email="jane_at_example.com")
def test_a_spelled_email_in_a_token_a_segment_or_a_host_is_not_kept(email: str) -> None:
    assert sanitise_user_agent(f"{BROWSER} App/{email}") == BROWSER
    assert sanitise_user_agent(f"{BROWSER} {email}/1.0") == BROWSER
    in_path = email.replace("#", "%23")  # a bare # would start the fragment, which goes
    assert sanitise_page_url(f"https://shop.example/u/{in_path}/x") == (
        "https://shop.example/u/(redacted)/x"
    )


# Browsers' versions: Chrome's, Edge's, Opera's `major.0.build.patch`, Firefox's `major.0`,
# Safari's `major.minor.patch`, an app's `major.minor.build` under ten digits.
VERSIONS = st.one_of(
    st.builds("{}.0.{}.{}".format, st.integers(1, 999), st.integers(0, 99999),
              st.integers(0, 999)),
    st.builds("{}.0".format, st.integers(1, 999)),
    st.builds("{}.{}.{}".format, st.integers(1, 99), st.integers(0, 99), st.integers(0, 999)),
    st.builds("{}.{}.{}".format, st.integers(1, 9), st.integers(0, 99), st.integers(0, 99999)),
)  # fmt: skip


@given(version=VERSIONS)
@example(version="120.0.6099.109")
def test_a_browsers_version_is_kept(version: str) -> None:
    sent = f"{BROWSER} Chrome/{version} Safari/537.36"
    assert sanitise_user_agent(sent) == sent
