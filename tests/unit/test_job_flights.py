"""A job's `flights` (what it marked in flight, per identity) are stored short beside its
identifiers and read back whole, and jobs stored in the long form before are read the same."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from optout.purposes import ALL_PURPOSES
from optout.store.delivery import flights_of, stored_flights

EMAIL = {"type": "email", "key": "a" * 64, "value": "pat@example.org"}
DEVICE = {"type": "device_id", "key": "b" * 64, "value": "c" * 32}
EMAIL_PK, DEVICE_PK = "ID#email#" + "a" * 64, "ID#device_id#" + "b" * 64


def _job(
    identifiers: list[dict[str, Any]], flights: list[dict[str, Any]], purposes: list[str]
) -> dict[str, Any]:
    return {"identifiers": identifiers, "flights": flights, "purposes": purposes}


def test_a_flight_for_its_identifier_and_every_purpose_of_the_job_is_stored_empty() -> None:
    # Given a job for two identities, each needing every purpose of the job
    purposes = ["sale", "share"]
    flights = [{"pk": EMAIL_PK, "purposes": purposes}, {"pk": DEVICE_PK, "purposes": purposes}]
    # When its flights are stored
    stored = stored_flights([EMAIL, DEVICE], flights, purposes)
    # Then neither names its identity's key nor the purposes again
    assert stored == [{}, {}]


def test_a_flight_with_fewer_purposes_than_the_job_keeps_its_own() -> None:
    # Given a job whose device still needed only one of the job's purposes
    flights = [{"pk": EMAIL_PK, "purposes": ["sale", "share"]},
               {"pk": DEVICE_PK, "purposes": ["share"]}]  # fmt: skip
    # When its flights are stored and read back
    stored = stored_flights([EMAIL, DEVICE], flights, ["sale", "share"])
    job = _job([EMAIL, DEVICE], stored, ["sale", "share"])
    # Then the device's flight keeps its purpose, and both read back as they were
    assert stored == [{}, {"purposes": ["share"]}]
    assert flights_of(job) == flights


def test_flights_that_are_not_one_per_identifier_stay_in_the_long_form() -> None:
    # Given flights in another order than the job's identifiers
    flights = [{"pk": DEVICE_PK, "purposes": ["sale"]}, {"pk": EMAIL_PK, "purposes": ["sale"]}]
    # When they are stored
    stored = stored_flights([EMAIL, DEVICE], flights, ["sale"])
    # Then they are kept as given
    assert stored == flights


def test_a_job_stored_in_the_long_form_reads_its_flights_unchanged() -> None:
    # Given a job written before flights were stored short (a deployed table holds them)
    flights = [{"pk": EMAIL_PK, "purposes": ["sale"]}, {"pk": DEVICE_PK, "purposes": ["share"]}]
    job = _job([EMAIL, DEVICE], flights, ["sale", "share"])
    # When its flights are read
    # Then they are what it stored
    assert flights_of(job) == flights


def test_a_final_job_without_identifier_values_reads_its_short_flights() -> None:
    # Given a finished job: its identifiers kept their types and keyed hashes only
    stored = stored_flights([EMAIL], [{"pk": EMAIL_PK, "purposes": ["sale"]}], ["sale"])
    kept = [{"type": "email", "key": "a" * 64}]
    # When its flights are read (a failed job frees its marks by them)
    # Then they name the identity and the job's purposes
    assert flights_of(_job(kept, stored, ["sale"])) == [{"pk": EMAIL_PK, "purposes": ["sale"]}]


IDENTIFIERS = st.lists(
    st.builds(
        lambda t, k: {"type": t, "key": k, "value": "v"},
        st.sampled_from(["email", "phone", "customer_id", "device_id"]),
        st.text("0123456789abcdef", min_size=1, max_size=8),
    ),
    max_size=6,
)
PURPOSES = st.lists(st.sampled_from(ALL_PURPOSES), min_size=1, unique=True)


@given(IDENTIFIERS, PURPOSES, st.data())
def test_stored_flights_read_back_as_the_flights_given(
    identifiers: list[dict[str, Any]], purposes: list[str], data: st.DataObject
) -> None:
    # Given any identities and, for each, any non-empty share of the job's purposes
    flights = [
        {"pk": f"ID#{i['type']}#{i['key']}",
         "purposes": [p for p in purposes
                      if p in data.draw(st.sets(st.sampled_from(purposes), min_size=1))]}
        for i in identifiers
    ]  # fmt: skip
    # When the job stores them short and a reader reads them
    job = _job(identifiers, stored_flights(identifiers, flights, purposes), purposes)
    # Then the reader sees every flight as given
    assert flights_of(job) == flights
