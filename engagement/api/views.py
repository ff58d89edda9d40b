"""REST API v1. Thin: every queryset is scoped to the request's workspace; writes go through services."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from customers.models import Customer
from customers.services import Identifier, InvalidIdentifier, customer_resolve
from engagement.models import Channel, Interaction, Workspace
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.services.messaging import message_send

from .serializers import CustomerSerializer, InteractionSerializer, MessageCreateSerializer


def _workspace(request: Request) -> Workspace:
    return request.workspace  # type: ignore[attr-defined]


class TimelinePagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CustomerPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CustomerFilter(django_filters.FilterSet):
    identity = django_filters.CharFilter(
        field_name="identities__value", lookup_expr="iexact", label="Any identity value (phone, email…)"
    )
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = ["identity", "created_after"]


class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    pagination_class = CustomerPagination

    def get_queryset(self) -> QuerySet[Customer]:
        return (
            Customer.objects.filter(workspace=_workspace(self.request))
            .prefetch_related("identities")
            .distinct()
        )

    @extend_schema(responses=InteractionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=TimelinePagination, filterset_class=None)
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        customer = self.get_object()
        qs = Interaction.objects.filter(workspace=_workspace(request), customer=customer).select_related(
            "channel"
        )
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(InteractionSerializer(page, many=True).data)


class InteractionDetail(generics.RetrieveAPIView):
    serializer_class = InteractionSerializer

    def get_queryset(self) -> QuerySet[Interaction]:
        return Interaction.objects.filter(workspace=_workspace(self.request)).select_related("channel")


class MessageCreate(generics.GenericAPIView):
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
        if data.get("customer_id"):
            customer = Customer.objects.filter(workspace=workspace, pk=data["customer_id"]).first()
            if customer is None:
                raise NotFound("no such customer in this workspace")
        else:
            try:
                customer, _ = customer_resolve(
                    workspace=workspace,
                    identifier=Identifier(CHANNEL_IDENTITY_KIND[channel.kind], data["to"]),
                    channel_kind=channel.kind,
                )
            except InvalidIdentifier as exc:
                raise ValidationError({"to": [str(exc)]}) from exc
        key = data.get("idempotency_key") or request.headers.get("Idempotency-Key") or None
        interaction, created = message_send(
            workspace=workspace,
            channel=channel,
            customer=customer,
            body=data["body"],
            to_address=data.get("to"),
            author=request.user if request.user.is_authenticated else None,
            idempotency_key=f"api:{key}" if key else None,
            purpose=data["purpose"],
        )
        return Response(
            InteractionSerializer(interaction).data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )
