"""Vendor API versions we know, with their published end of life (checked 2026-11-29).

A connector's version lives in its system's options (with a current default in the connector).
tests/unit/connectors/test_versions.py fails when a configured or default version is past its
end of life, or is not in this table: a version we have not looked up is not a version we
can vouch for. Sources and dates: docs/vendors.md.
"""

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Lifecycle:
    end_of_life: date | None  # None: the vendor has published no end of life yet
    source: str


META = "https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions.md"
SALESFORCE_21_30 = "https://help.salesforce.com/s/articleView?id=000354473&language=en_US&type=1"
SALESFORCE_31_40 = "https://help.salesforce.com/s/articleView?id=005321531"
SALESFORCE_POLICY = "https://developer.salesforce.com/docs/atlas.en-us.242.0.bigobjects.meta/bigobjects/api_rest_eol.htm"
DATA_MANAGER = (
    "https://developers.google.com/data-manager/api/reference/rest/v1/audienceMembers/remove"
)
GOOGLE_ADS_V21 = (
    "https://developers.google.com/ads/blog/posts/2026/06/google-ads-api-v21-sunset-reminder"
)
UID2_MAP = "https://github.com/IABTechLab/uid2docs/blob/main/docs/endpoints/post-identity-map.md"

KNOWN: dict[tuple[str, str], Lifecycle] = {
    # Meta Marketing API: version history (release dates and expirations).
    ("meta", "v21.0"): Lifecycle(date(2025, 9, 9), META),
    ("meta", "v22.0"): Lifecycle(date(2026, 2, 19), META),
    ("meta", "v23.0"): Lifecycle(date(2026, 6, 9), META),
    ("meta", "v24.0"): Lifecycle(date(2026, 11, 10), META),
    ("meta", "v25.0"): Lifecycle(date(2027, 2, 23), META),
    ("meta", "v26.0"): Lifecycle(None, META),
    ("meta", "v27.0"): Lifecycle(None, META),
    # Google: the Data Manager API (v1) replaced Customer Match through the Google Ads API;
    # kept here so a config still naming the Ads API's v21 fails loudly.
    ("google_ads", "v1"): Lifecycle(None, DATA_MANAGER),
    ("google_ads", "v21"): Lifecycle(date(2026, 8, 5), GOOGLE_ADS_V21),
    # UID2 operator identity map (The Trade Desk's connector maps through it).
    ("uid2", "v3"): Lifecycle(None, UID2_MAP),
    # Salesforce Platform API: 21.0-30.0 retired in Summer '25 (REST answers 410 Gone);
    # 31.0-40.0 retire in Summer '28 (the month is published, the day is not: June 1st here).
    **{
        ("salesforce", f"v{n}.0"): Lifecycle(date(2025, 6, 1), SALESFORCE_21_30)
        for n in range(21, 31)
    },
    **{
        ("salesforce", f"v{n}.0"): Lifecycle(date(2028, 6, 1), SALESFORCE_31_40)
        for n in range(31, 41)
    },
    **{("salesforce", f"v{n}.0"): Lifecycle(None, SALESFORCE_POLICY) for n in range(41, 69)},
}


def lifecycle(vendor: str, version: str) -> Lifecycle | None:
    return KNOWN.get((vendor, version))


def expired(vendor: str, version: str, today: date) -> bool:
    known = lifecycle(vendor, version)
    return known is not None and known.end_of_life is not None and known.end_of_life <= today
