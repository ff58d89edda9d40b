"""``application/problem+json`` (RFC 9457) is rendered as JSON, so a client may ask for it in ``Accept``."""

from rest_framework.renderers import JSONRenderer


class ProblemJSONRenderer(JSONRenderer):
    media_type = "application/problem+json"
    format = "problem+json"
