"""Twilio error codes and what they mean (PROTOCOLS.md D; twilio.com/docs/api/errors).

Provider facts both halves need: status callbacks (inbound) explain an ``ErrorCode`` with them, the
senders (outbound) classify API errors with them. They live on the inbound side because the declared
direction between the adapters is outbound → inbound (see the import contracts in pyproject.toml).
"""

from __future__ import annotations

# Twilio error codes that no retry can fix, and their reasons (PROTOCOLS.md D; twilio.com/docs/api/errors).
PERMANENT_ERRORS = {
    "21211": "invalid 'To' phone number",
    "21408": "permission to send to this region is not enabled",
    "21610": "recipient has opted out (replied STOP)",
    "21612": "the 'To' number cannot be reached from this 'From' number",
    "21614": "'To' is not a mobile number",
    "21606": "the 'From' number cannot send SMS",
    "21617": "body exceeds the 1600 character limit",
    "21620": "invalid media URL",
    "21623": "too many media files (at most 10)",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "carrier filtered the message",
    "30019": "content size exceeds the carrier limit",
    "30032": "toll-free number is not verified",
    "30034": "US A2P 10DLC: the sender is not registered",
}
# Every code we can explain, for failed/undelivered status callbacks that carry only ErrorCode.
ERROR_REASONS = {
    **PERMANENT_ERRORS,
    "20429": "too many requests to the Twilio API",
    "30001": "queue overflow: the sender's queue is full",
    "30002": "account suspended",
    "30008": "unknown error from the carrier",
    "30022": "US A2P 10DLC throughput exceeded",
}
OPT_OUT_ERRORS = {"21610"}
RETRYABLE_CODES = {"20429", "20500", "20503"}
