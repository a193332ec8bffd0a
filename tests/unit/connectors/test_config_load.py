"""Loading the systems config: the two shipped files, and what load refuses (naming the system
and the field, never a value)."""

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from optout.connectors import CONNECTORS
from optout.connectors.credentials import fixed
from optout.connectors.errors import ConfigError
from optout.connectors.http import HttpClient
from optout.connectors.salesforce import DEFAULT_FIELDS
from optout.connectors.versions import expired, lifecycle
from optout.systems import SystemsConfigError, load_systems
from optout.systems_models import SystemModel
from scripts import gen_template

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "layers" / "common" / "config" / "systems.json"
LOCAL = ROOT / "local" / "systems.json"
LOCAL_ENV = {"LOCAL_STACK_URL": "http://127.0.0.1:3000", "OPTOUT_LOCAL_MODE": "true"}


def write(tmp_path: Path, options: dict[str, Any], name: str = "crm") -> Path:
    path = tmp_path / "systems.json"
    system = {"name": name, "type": "webhook", "identifier_types": ["email"],
              "purposes": ["sale"], "options": options}  # fmt: skip
    path.write_text(json.dumps({"systems": [system]}))
    return path


def test_the_production_example_loads_without_a_local_stack():
    config = load_systems(PRODUCTION, environ={})

    assert all(s.options["base_url"].startswith("https://") for s in config.systems)


def test_the_local_config_points_every_system_at_the_stacks_sandboxes():
    config = load_systems(LOCAL, environ=LOCAL_ENV)

    for system in config.systems:
        assert system.options["base_url"] == f"http://127.0.0.1:3000/_sandbox/{system.name}"


def test_both_files_declare_the_same_systems():
    production = load_systems(PRODUCTION, environ={})
    local = load_systems(LOCAL, environ=LOCAL_ENV)

    assert [(s.name, s.type, s.identifier_types) for s in production.systems] == [
        (s.name, s.type, s.identifier_types) for s in local.systems
    ]


def test_braze_takes_phones_and_a_file_written_before_still_loads_and_is_warned(tmp_path):
    # Given a Braze system with phone (review s31 vendors V31-1), and one as written before
    # session 31, customer_id and email only
    production = json.loads(PRODUCTION.read_text())
    (braze,) = [s for s in production["systems"] if s["type"] == "braze"]
    assert "phone" in braze["identifier_types"]
    before = {**braze, "identifier_types": ["customer_id", "email"]}
    for system, path in ((braze, tmp_path / "now.json"), (before, tmp_path / "before.json")):
        path.write_text(json.dumps({"systems": [system]}))
        # When each is loaded, by the plain reader and by the models
        loaded = load_systems(path, environ={}).systems[0]
        modelled = SystemModel.model_validate(system).config()
        # Then both load as written
        assert (
            loaded.identifier_types
            == modelled.identifier_types
            == tuple(system["identifier_types"])
        )
    # ... and `make template` warns of the earlier file that a phone-only opt-out misses Braze
    old = load_systems(tmp_path / "before.json", environ={}).systems
    (warning,) = gen_template.narrow_type_warnings(old)
    assert warning.startswith("braze: its braze connector can also send phone")
    assert gen_template.narrow_type_warnings(load_systems(PRODUCTION, environ={}).systems) == []


def test_an_unset_variable_is_refused_naming_system_and_field(tmp_path):
    path = write(tmp_path, {"base_url": "${NOT_SET_ANYWHERE}/x"})

    with pytest.raises(SystemsConfigError, match=r"system crm: options.base_url uses \$\{NOT_SET"):
        load_systems(path, environ={})


def test_the_local_file_is_refused_outside_local_mode():
    with pytest.raises(SystemsConfigError, match=r"system webhook: options\.base_url uses"):
        load_systems(LOCAL, environ={})


def test_plain_http_is_refused_in_production(tmp_path):
    path = write(tmp_path, {"base_url": "http://127.0.0.1:3000/_sandbox/crm"})

    with pytest.raises(SystemsConfigError, match=r"system crm: options\.base_url must be an https"):
        load_systems(path, environ={})


def test_plain_http_to_a_non_loopback_host_is_refused_even_locally(tmp_path):
    path = write(tmp_path, {"base_url": "http://crm.example.com/hook"})

    with pytest.raises(SystemsConfigError, match=r"must be an https \(or http to a loopback host"):
        load_systems(path, environ=LOCAL_ENV)


def test_every_url_option_is_checked_not_only_base_url(tmp_path):
    path = write(tmp_path, {"base_url": "https://crm.example.com", "token_url": "ftp://x/token"})

    with pytest.raises(SystemsConfigError, match=r"options\.token_url must be an https"):
        load_systems(path, environ={})


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",  # private
        "https://169.254.169.254/latest/meta-data",  # the instance metadata address
        "https://127.0.0.1:9001/hook",  # loopback
        "https://[::1]:8443/hook",
        "https://[fd00:ec2::254]/latest",  # the metadata address over IPv6 (unique local)
        "https://[::ffff:10.0.0.5]/hook",  # IPv4-mapped
        "https://0.0.0.0/hook",
        "https://167772165/hook",  # 10.0.0.5 as one number, which getaddrinfo reads
        "https://0x7f.1/hook",  # 127.0.0.1 in the legacy hex form
        # Blocks whose is_global answer differs between the tests' Python 3.11 and Lambda's
        # 3.13 (review s21 py313): refused on both
        "https://[2002:a00:5::]/hook",  # 6to4 of 10.0.0.5: global to 3.11.7
        "https://192.0.0.8/hook",  # IETF protocol assignments: global to 3.11.7
        "https://[64:ff9b:1::a00:5]/hook",  # local-use translation: global to 3.11.7
        "https://[2001:20::1]/hook",  # ORCHIDv2: global to 3.13
        # IPv6 forms that reach an IPv4 address, public to every Python (review s21 py313)
        "https://[64:ff9b::a00:5]/hook",  # NAT64 of 10.0.0.5
        "https://[64:ff9b::a9fe:a9fe]/latest",  # NAT64 of the metadata address
        "https://[::a00:5]/hook",  # IPv4-compatible 10.0.0.5
    ],
)
def test_an_internal_ip_address_is_refused_outside_local_mode(tmp_path, url):
    # review s18 operator, I1: only the scheme was checked
    path = write(tmp_path, {"base_url": url})

    with pytest.raises(
        SystemsConfigError, match=r"system crm: options\.base_url must name a public"
    ):
        load_systems(path, environ={})


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.partner.example/x",
        "https://203.0.113.9.nip.io/x",
        "https://8.8.8.8/x",
        "https://[64:ff9b::808:808]/x",  # NAT64 of 8.8.8.8: public
    ],
)
def test_host_names_and_public_addresses_stay_allowed(tmp_path, url):
    path = write(tmp_path, {"base_url": url})

    assert load_systems(path, environ={}).systems[0].options["base_url"] == url


def test_a_loopback_https_url_stays_allowed_in_local_mode(tmp_path):
    path = write(tmp_path, {"base_url": "https://127.0.0.1:9001/hook"})

    assert load_systems(path, environ=LOCAL_ENV).systems[0].options["base_url"]


def test_the_refusal_never_echoes_the_value(tmp_path):
    path = write(tmp_path, {"base_url": "http://secret-partner-host.example/hook"})

    with pytest.raises(SystemsConfigError) as refused:
        load_systems(path, environ={})
    assert "secret-partner-host" not in str(refused.value)


@pytest.mark.parametrize(
    "system", load_systems(PRODUCTION, environ={}).systems, ids=lambda s: s.name
)
def test_a_production_example_system_refuses_to_run_until_its_placeholders_are_edited(system):
    with pytest.raises(
        ConfigError, match=rf"system {system.name}: replace the EDIT-ME placeholder"
    ):
        CONNECTORS[system.type](system, fixed({}), HttpClient(1))


@pytest.mark.parametrize(
    ("path", "env"), [(PRODUCTION, {}), (LOCAL, LOCAL_ENV)], ids=["production", "local"]
)
def test_every_shipped_system_passes_its_connectors_own_checks(path, env):
    # configure() refuses what load_systems cannot know (e.g. a purpose without a field): the
    # same check `make template` makes, placeholders filled as an operator would
    for system in load_systems(path, environ=env).systems:
        gen_template.check_options(system)


def configured_versions() -> list[tuple[str, str, str]]:
    """(where, vendor, version) for every default and every configured API version."""
    found = [
        ("default", "meta", "v27.0"),
        ("default", "salesforce", "v66.0"),
        ("default", "google_ads", "v1"),
        ("default", "uid2", "v3"),
    ]
    for path, env in ((PRODUCTION, {}), (LOCAL, LOCAL_ENV)):
        for system in load_systems(path, environ=env).systems:
            if "api_version" in system.options:
                found.append((f"{path.parent.name}/{system.name}", system.type,
                              system.options["api_version"]))  # fmt: skip
    return found


@pytest.mark.parametrize(("where", "vendor", "version"), configured_versions())
def test_no_configured_api_version_is_past_its_end_of_life(where, vendor, version):
    # A version we have not looked up fails too: add it to optout.connectors.versions.
    assert lifecycle(vendor, version) is not None, f"{where}: {vendor} {version} is not known"
    assert not expired(vendor, version, datetime.now(UTC).date()), f"{where}: {version} expired"


def test_the_connector_defaults_are_the_versions_this_test_checks():
    from optout.connectors import meta, salesforce  # noqa: PLC0415

    assert meta.DEFAULT_VERSION == "v27.0"
    defaults = {f.name: f.default for f in dataclasses.fields(salesforce.SalesforceOptions)}
    assert defaults["api_version"] == "v66.0"


def test_a_known_expired_version_is_reported_expired():
    assert expired("meta", "v21.0", datetime(2026, 11, 29, tzinfo=UTC).date())
    assert expired("google_ads", "v21", datetime(2026, 11, 29, tzinfo=UTC).date())


def test_segment_consent_mode_needs_a_workspace_category_for_every_purpose(tmp_path):
    # "sale" is our purpose name, not a category id of anyone's workspace: no defaulting
    options = {"base_url": "https://api.segment.io", "categories": {"sale": "C0004"}}
    system = {"name": "cdp", "type": "segment", "identifier_types": ["customer_id"],
              "purposes": ["sale", "profiling"], "options": options}  # fmt: skip
    path = tmp_path / "systems.json"
    path.write_text(json.dumps({"systems": [system]}))
    (loaded,) = load_systems(path, environ={}).systems

    with pytest.raises(ConfigError, match=r"categories must map every purpose.*'profiling'"):
        CONNECTORS["segment"](loaded, fixed({"write_key": "k"}), HttpClient(1))


def test_salesforce_needs_a_field_for_every_purpose(tmp_path):
    # The default map has no limit_sensitive: such a job would be "done" with nothing written
    system = {"name": "crm", "type": "salesforce", "identifier_types": ["email"],
              "purposes": ["sale", "limit_sensitive"],
              "options": {"base_url": "https://org.my.salesforce.com"}}  # fmt: skip
    path = tmp_path / "systems.json"
    path.write_text(json.dumps({"systems": [system]}))
    (loaded,) = load_systems(path, environ={}).systems

    with pytest.raises(ConfigError, match=r"system crm: options.fields must map every purpose.*"
                                          r"\['limit_sensitive'\]"):  # fmt: skip
        CONNECTORS["salesforce"](loaded, fixed({}), HttpClient(1))
    mapped = dict(DEFAULT_FIELDS, limit_sensitive="HasOptedOutProcessing")
    CONNECTORS["salesforce"](
        dataclasses.replace(loaded, options={**loaded.options, "fields": mapped}),
        fixed({}),
        HttpClient(1),
    )


@pytest.mark.parametrize("options", [{"person_accounts": True}, {"record_field": "X__c"}])
def test_salesforce_person_account_record_field_alone_is_refused(options):
    # It names the Person Account side of record_field: without both it would write nothing
    system = SystemModel.model_validate(
        {"name": "crm", "type": "salesforce", "identifier_types": ["email"], "purposes": ["sale"],
         "options": {"base_url": "https://org.my.salesforce.com", **options,
                     "person_account_record_field": "X__pc"}}
    ).config()  # fmt: skip

    with pytest.raises(ConfigError, match="person_account_record_field needs record_field and"):
        CONNECTORS["salesforce"](system, fixed({}), HttpClient(1))


@pytest.mark.parametrize("kind", ["DELETE_ONLY", "DELETE_INTERNAL", "UNSUPPRESS"])
def test_segment_regulation_type_must_suppress_new_data(tmp_path, kind):
    # DELETE_ONLY: "Delete existing data without suppressing any new data" (Segment)
    options = {"base_url": "https://api.segmentapis.com", "mode": "regulation",
               "regulation_type": kind}  # fmt: skip
    system = {"name": "cdp", "type": "segment", "identifier_types": ["customer_id"],
              "purposes": ["sale"], "options": options}  # fmt: skip
    path = tmp_path / "systems.json"
    path.write_text(json.dumps({"systems": [system]}))
    (loaded,) = load_systems(path, environ={}).systems

    with pytest.raises(ConfigError, match=rf"system cdp: options.regulation_type {kind} does not "
                                          r"suppress new data"):  # fmt: skip
        CONNECTORS["segment"](loaded, fixed({"token": "t"}), HttpClient(1))
    for suppressing in ("SUPPRESS_ONLY", "SUPPRESS_WITH_DELETE_INTERNAL"):
        edited = {**loaded.options, "regulation_type": suppressing}
        CONNECTORS["segment"](dataclasses.replace(loaded, options=edited), fixed({}), HttpClient(1))


def test_segment_delete_archive_only_is_no_workspace_regulation_type():
    # Segment's Public API SDK has DELETE_ARCHIVE_ONLY for source-scoped regulations only, not
    # in POST /regulations's enum (tests/unit/connectors/test_segment_sdk.py)
    options = {"base_url": "https://api.segmentapis.com", "mode": "regulation",
               "regulation_type": "DELETE_ARCHIVE_ONLY"}  # fmt: skip
    given = {"name": "cdp", "type": "segment", "identifier_types": ["customer_id"],
             "purposes": ["sale"], "options": options}  # fmt: skip
    system = SystemModel.model_validate(given).config()

    with pytest.raises(ConfigError, match=r"system cdp: invalid options \(regulation_type\)"):
        CONNECTORS["segment"](system, fixed({"token": "t"}), HttpClient(1))


def test_segment_suppress_with_delete_is_refused_its_failed_hides_a_suppression_in_place():
    # Review s29 V1: SUPPRESS_WITH_DELETE forwards a deletion to destinations and Segment
    # "might return a FAILED status because of a failure on an unsupported destination" with
    # the suppression (the opt-out) in place: such a receipt would be "failed" for good, and
    # a replay would spend more of the 110,000-a-month quota failing the same way.
    options = {"base_url": "https://api.segmentapis.com", "mode": "regulation",
               "regulation_type": "SUPPRESS_WITH_DELETE"}  # fmt: skip
    given = {"name": "cdp", "type": "segment", "identifier_types": ["customer_id"],
             "purposes": ["sale"], "options": options}  # fmt: skip
    system = SystemModel.model_validate(given).config()

    with pytest.raises(ConfigError) as refused:
        CONNECTORS["segment"](system, fixed({"token": "t"}), HttpClient(1))

    message = str(refused.value)
    assert message.startswith("system cdp: options.regulation_type SUPPRESS_WITH_DELETE ")
    assert "SUPPRESS_WITH_DELETE_INTERNAL" in message and "SUPPRESS_ONLY" in message


def test_a_segment_regulation_waits_segments_30_days_before_giving_up():
    # Segment: a suppression "can take up to 30 days to process"; other modes keep the setting
    base = {"name": "cdp", "type": "segment", "identifier_types": ["customer_id"],
            "purposes": ["sale"]}  # fmt: skip
    regulation = {"base_url": "https://api.segmentapis.com", "mode": "regulation"}
    consent = {"base_url": "https://api.segment.io", "categories": {"sale": "C0004"}}
    made = {
        mode: CONNECTORS["segment"](
            SystemModel.model_validate({**base, "options": options}).config(),
            fixed({}),
            HttpClient(1),
        )
        for mode, options in (("regulation", regulation), ("consent", consent))
    }

    assert made["regulation"].confirm_give_up_seconds(604_800) == 30 * 24 * 3600
    assert made["regulation"].confirm_give_up_seconds(90 * 24 * 3600) == 90 * 24 * 3600
    assert made["consent"].confirm_give_up_seconds(604_800) == 604_800
