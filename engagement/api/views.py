"""REST API v1. Thin: every queryset is scoped to the request's workspace; writes go through services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from customers.lookup import CustomerNotFound, customer_resolve_current
from engagement.models import Channel
from engagement.services.messaging import message_send, message_send_to_address

from .base import ContractAPIView
from .base import request_workspace as _workspace
from .serializers import InteractionSerializer, MessageCreateSerializer

# The header obeys the body field's rules (length: the column holds "api:" + 150 characters).
_IDEMPOTENCY_KEY = MessageCreateSerializer().fields["idempotency_key"]


def _idempotency_header(request: Request) -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if not raw:
        return None
    try:
        return str(_IDEMPOTENCY_KEY.run_validation(raw))
    except serializers.ValidationError as exc:
        raise ValidationError({"Idempotency-Key": exc.detail}) from exc


class MessageCreate(ContractAPIView):
    scope_area = "messages"

    serializer_class = MessageCreateSerializer

    @extend_schema(request=MessageCreateSerializer, responses={202: InteractionSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        workspace = _workspace(request)
        ser = MessageCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        channel = Channel.objects.filter(workspace=workspace, pk=data["channel_id"]).first()
        if channel is None:
            raise NotFound("no such channel in this workspace")
        key = data.get("idempotency_key") or _idempotency_header(request)
        options: dict[str, Any] = {
            "author": request.user if request.user.is_authenticated else None,
            "idempotency_key": f"api:{key}" if key else None,
            "purpose": data["purpose"],
            "media_urls": data.get("media_urls") or (),
        }
        if data.get("customer_id"):
            try:
                # Following merges: the id may name a customer merged into another since.
                customer = customer_resolve_current(
                    workspace_id=workspace.pk, customer_id=data["customer_id"]
                )
            except CustomerNotFound as exc:
                raise NotFound("no such customer in this workspace") from exc
            interaction, created = message_send(
                workspace=workspace,
                channel=channel,
                customer=customer,
                body=data["body"],
                to_address=data.get("to"),
                **options,
            )
        else:
            interaction, created = message_send_to_address(
                workspace=workspace, channel=channel, to_address=data["to"], body=data["body"], **options
            )
        return Response(
            InteractionSerializer(interaction).data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )
