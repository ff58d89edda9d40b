"""REST API for outbound webhooks: endpoints (CRUD, secret rotation), their delivery log, replays and
the catalog of event types. Thin: scoped to the request's workspace, writes go through
``engagement.webhooks.services``; domain errors become responses in the one exception handler."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from engagement.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from engagement.webhooks import services
from engagement.webhooks.catalog import EVENT_TYPES

from .base import request_workspace as _workspace

EVENT_TYPE_CHOICES = sorted(EVENT_TYPES)


class WebhookEndpointSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        required=False,
        help_text="Public event types to receive; empty for every type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "disabled_detail",
            "disabled_at",
            "failing_since",
            "consecutive_failed_deliveries",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "disabled_reason",
            "disabled_detail",
            "disabled_at",
            "failing_since",
            "consecutive_failed_deliveries",
            "created_at",
            "updated_at",
        ]


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="whsec_… signing secret (Standard Webhooks); shown only in this response."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "attempted_at", "status_code", "duration_ms", "error", "response_body", "replay"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint_id",
            "event_id",
            "event_type",
            "customer_id",
            "state",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_duration_ms",
            "last_error",
            "delivered_at",
            "replays",
            "created_at",
        ]
        read_only_fields = fields


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    body = serializers.CharField(read_only=True, help_text="The exact JSON body sent (and signed).")
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "body", "attempt_log"]
        read_only_fields = fields


class NewestFirst(CursorPagination):
    ordering = ("-id",)
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Endpoints that receive the workspace's events, signed per the Standard Webhooks specification."""

    scope_area = "webhooks"
    extra_query_params = ("state", "page_size")

    serializer_class = WebhookEndpointSerializer
    lookup_value_regex = r"\d+"
    pagination_class = NewestFirst
    filterset_fields = ["enabled"]

    queryset = WebhookEndpoint.objects.none()

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return WebhookEndpoint.objects.none()
        return services.webhook_endpoint_list(workspace=_workspace(self.request))

    @extend_schema(request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = WebhookEndpointSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        endpoint, secret = services.webhook_endpoint_create(
            workspace=_workspace(request),
            url=data["url"],
            event_types=data.get("event_types", []),
            description=data.get("description", ""),
            created_by=request.user if request.user.is_authenticated else None,
        )
        if data.get("enabled") is False:
            services.webhook_endpoint_update(endpoint=endpoint, enabled=False)
        out = WebhookEndpointCreatedSerializer(endpoint).data
        out["secret"] = secret
        return Response(out, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        endpoint = self.get_object()
        incoming = WebhookEndpointSerializer(
            endpoint, data=request.data, partial=kwargs.get("partial", False)
        )
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        services.webhook_endpoint_update(
            endpoint=endpoint,
            url=data.get("url"),
            event_types=data.get("event_types"),
            description=data.get("description"),
            enabled=data.get("enabled"),
        )
        return Response(WebhookEndpointSerializer(endpoint).data)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        services.webhook_endpoint_delete(endpoint=instance)

    @extend_schema(
        request=None,
        responses=inline_serializer("WebhookSecret", fields={"secret": serializers.CharField()}),
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new signing secret, shown once; the old one stops signing at once."""
        secret = services.webhook_endpoint_secret_rotate(endpoint=self.get_object())
        return Response({"secret": secret})

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The endpoint's delivery log, newest first."""
        endpoint = self.get_object()
        queryset = services.webhook_delivery_list(endpoint=endpoint)
        state = request.query_params.get("state")
        if state:
            queryset = queryset.filter(state=state)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One delivery with its body and every attempt; replay sends it again."""

    scope_area = "webhooks"

    serializer_class = WebhookDeliveryDetailSerializer
    lookup_value_regex = r"\d+"

    queryset = WebhookDelivery.objects.none()

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return WebhookDelivery.objects.none()
        return WebhookDelivery.objects.filter(workspace=_workspace(self.request)).prefetch_related(
            "attempt_log"
        )

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        """Send the delivery again (same ``webhook-id`` and body), whatever its state. 409 when its
        endpoint is disabled."""
        delivery = services.webhook_delivery_replay(workspace=_workspace(request), delivery_id=int(pk or 0))
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookEventTypeList(APIView):
    """The public event types an endpoint may subscribe to."""

    scope_area = "webhooks"

    @extend_schema(
        responses=inline_serializer(
            "WebhookEventType",
            fields={"type": serializers.CharField(), "description": serializers.CharField()},
            many=True,
        )
    )
    def get(self, request: Request) -> Response:
        return Response([{"type": t, "description": d} for t, d in EVENT_TYPES.items()])
