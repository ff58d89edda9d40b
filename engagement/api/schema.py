"""OpenAPI: every operation documents the shared problem responses (RFC 9457) it can answer with.

``ContractAutoSchema`` is the project's ``DEFAULT_SCHEMA_CLASS``: to each operation's own responses it adds
400 (invalid input, unknown query parameter), 401, 403 (``scope_missing``…), 404 and 429 (rate limited);
``POST`` adds 409 and 422 (``Idempotency-Key`` in flight or reused, the rules). The body is ``Problem``
under ``application/problem+json``. It also documents the ``Idempotency-Key`` header on every ``POST``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from .exceptions import PROBLEM_CONTENT_TYPE


class ProblemFieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(
        help_text="The input at fault, dotted (identifiers.0.value), or a "
        "query parameter or header name; empty for the whole body."
    )
    pointer = serializers.CharField(help_text="JSON Pointer (RFC 6901) into the request body.")
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Machine-readable: required, invalid, unknown_parameter…")


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details; extension members (``merged_into``, ``required_scope``…) may follow."""

    type = serializers.CharField(help_text="urn:engagement:problem:<code>")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable name of the problem.")
    errors = ProblemFieldErrorSerializer(many=True)  # type: ignore[assignment]  # a field named errors


_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("validation_failed", "Invalid input or an unknown query parameter"),
    401: ("not_authenticated", "No or an invalid API key"),
    403: ("scope_missing", "The key lacks the scope, or the action is not allowed"),
    404: ("not_found", "No such object in this workspace"),
    409: ("conflict", "Conflicts with the current state, or the Idempotency-Key is in use"),
    422: (
        "idempotency_key_reused",
        "Refused by the rules, or the Idempotency-Key was used with another body",
    ),
    429: ("rate_limited", "Rate limit exceeded; see Retry-After"),
}


def _problem_response(status: int) -> OpenApiResponse:
    code, description = _PROBLEMS[status]
    return OpenApiResponse(
        response=ProblemSerializer,
        description=description,
        examples=[
            OpenApiExample(
                code,
                value={
                    "type": f"urn:engagement:problem:{code}",
                    "title": description,
                    "status": status,
                    "detail": description,
                    "code": code,
                    "errors": [],
                },
                status_codes=[str(status)],
                media_type=PROBLEM_CONTENT_TYPE,
            )
        ],
    )


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Any unique string up to 255 characters. A repeat with the same body within 24 hours gets "
    "the first response again (Idempotent-Replayed: true); with another body, a 422 problem.",
)


class ContractAutoSchema(AutoSchema):
    def _problem_statuses(self) -> list[int]:
        # 404 everywhere: a path id, or an id in the body (a send's channel_id), may name nothing here.
        statuses = [400, 401, 403, 404, 429]
        if self.method == "POST":
            statuses += [409, 422]
        return sorted(statuses)

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in self._problem_statuses():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    _problem_response(status), str(status), media_types=[PROBLEM_CONTENT_TYPE]
                )
        return responses

    def get_override_parameters(self) -> list[Any]:
        params = list(super().get_override_parameters())
        if self.method == "POST":
            params.append(IDEMPOTENCY_KEY_PARAMETER)
        return params
