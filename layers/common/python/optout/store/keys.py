"""Key layout of the single table. Every identifier appears only as its keyed hash.

pk                      sk                      item
REQ#<request_id>        EVENT                   a captured event (stream -> resolver)
REQ#<request_id>        RESOLUTION              the resolver's outcome for the event
REQ#<request_id>        JOB#<system>            one downstream job and its receipt
ID#<type>#<hash>        NODE                    identity node: own choices, GPC, value
ID#<type>#<hash>        STATE                   effective state (what GET /v1/consent reads)
ID#<type>#<hash>        LINK#<type>#<hash>      identity-graph edge (written both ways)
HOLD#<type>#<hash>      <request_id>#<n>        a link held for review (cluster cap)
"""

from optout.identifiers import IdType

EVENT_SK = "EVENT"
RESOLUTION_SK = "RESOLUTION"
NODE_SK = "NODE"
STATE_SK = "STATE"
JOB_PREFIX = "JOB#"
LINK_PREFIX = "LINK#"


def request_pk(request_id: str) -> str:
    return f"REQ#{request_id}"


def job_sk(system: str) -> str:
    return f"{JOB_PREFIX}{system}"


def identity_pk(id_type: IdType | str, key: str) -> str:
    return f"ID#{id_type}#{key}"


def link_sk(id_type: IdType | str, key: str) -> str:
    return f"{LINK_PREFIX}{id_type}#{key}"


def hold_pk(id_type: IdType | str, key: str) -> str:
    return f"HOLD#{id_type}#{key}"


def split_identity_pk(pk: str) -> tuple[str, str]:
    """'ID#email#ab12' -> ('email', 'ab12')."""
    _, id_type, key = pk.split("#", 2)
    return id_type, key
