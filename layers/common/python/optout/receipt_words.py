"""Words a receipt carries that a connector writes and the views read (status.py, the CLI):
neither the store's key layout nor a connector's own, so both sides import them from here
(before 2026-12-04, vendor35: store/keys.py, which made The Trade Desk's connector import the
store)."""

# A receipt's `sent_to` when its types went to another party than its system: a UID2 operator,
# for a Trade Desk person it could not map (The Trade Desk never called; since 2026-12-04). An
# older such receipt says so only by its note, which starts with UID2_NO_RECORD_NOTE (since
# 2026-11-29, connectors/trade_desk.py). The views word it (proof34 L2).
SENT_TO_UID2_OPERATOR = "uid2_operator"
UID2_NO_RECORD_NOTE = "no UID2 for this person (UID2 operator"
