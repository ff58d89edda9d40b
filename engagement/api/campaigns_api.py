"""REST API for campaigns. Thin: scoped to the request's workspace; every action is a service of
``engagement.campaigns.services``.

Reading is open to every member and API key; writing (create, edit, launch, pause, resume, cancel, test
sends) to API keys, admins and marketers (agents cannot launch); approving to admins only, never the
author (the service checks).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from customers.models import Customer
from engagement.campaigns.services import (
    CONTENT_FIELDS,
    campaign_approve,
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_launch,
    campaign_lint,
    campaign_pause,
    campaign_preview,
    campaign_recipients,
    campaign_recipients_csv,
    campaign_resume,
    campaign_stats,
    campaign_test_send,
    campaign_update,
)
from engagement.errors import NotFound
from engagement.models import Campaign, CampaignRecipient, CampaignRun, Role
from engagement.models.campaigns import LatePolicy, RecipientState, ScheduleKind

from .base import WritesByRole
from .base import request_actor as _actor
from .base import request_workspace as _workspace

CAMPAIGN_EDITORS = (Role.ADMIN, Role.MARKETER)


class CanRunCampaigns(WritesByRole):
    message = "campaigns are run by admins and marketers"
    roles = CAMPAIGN_EDITORS
    read_actions = frozenset({"preview"})


# ---------------------------------------------------------------- serializers


class VariantSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=16)
    weight = serializers.IntegerField(min_value=1)
    content = serializers.DictField(required=False, help_text="Overrides of the campaign's content.")


class CampaignSerializer(serializers.ModelSerializer):
    segment = serializers.IntegerField(source="segment_id")

    class Meta:
        model = Campaign
        # The editable fields are the service's own list (engagement.campaigns.services.CONTENT_FIELDS).
        fields = [
            "id",
            *CONTENT_FIELDS,
            "state",
            "paused_reason",
            "next_run_at",
            "created_by_id",
            "approved_by_id",
            "approved_at",
            "launched_by_id",
            "launched_at",
            "completed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CampaignWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    purpose = serializers.ChoiceField(choices=["marketing", "transactional"], default="marketing")
    segment = serializers.IntegerField(help_text="Segment id.")
    channel_ids = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, help_text="Channels in fallback order."
    )
    prefer_customer_channel = serializers.BooleanField(required=False)
    content = serializers.DictField(
        required=False,
        help_text='Per channel kind: {"email": {"subject", "html", "text"}, "sms": {"body", "media_urls"}, '
        '"voice": {"message"}, "webchat": {"message"}}; Jinja2 over first_name, last_name, display_name, '
        'attributes, e.g. {{ first_name | default("there") }}.',
    )
    variants = VariantSerializer(many=True, required=False)
    holdout_percent = serializers.IntegerField(required=False, min_value=0, max_value=50)
    schedule_kind = serializers.ChoiceField(choices=ScheduleKind.choices, required=False)
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    rrule = serializers.CharField(required=False, allow_blank=True, help_text="e.g. FREQ=WEEKLY;BYDAY=MO")
    schedule_timezone = serializers.CharField(required=False)
    local_date = serializers.DateField(required=False, allow_null=True)
    local_time = serializers.TimeField(required=False, allow_null=True)
    fallback_timezone = serializers.CharField(required=False)
    late_policy = serializers.ChoiceField(choices=LatePolicy.choices, required=False)
    attribution_hours = serializers.IntegerField(required=False, min_value=1, max_value=24 * 30)
    goal_event = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="A custom event name: 'converted'."
    )
    goal_window_hours = serializers.IntegerField(required=False, min_value=1, max_value=24 * 90)


class RecipientSerializer(serializers.ModelSerializer):
    customer_name = serializers.CharField(source="customer.display_name")
    channel_kind = serializers.SerializerMethodField()
    message_status = serializers.SerializerMethodField()

    class Meta:
        model = CampaignRecipient
        fields = [
            "id",
            "run_id",
            "customer_id",
            "customer_name",
            "state",
            "variant",
            "due_at",
            "hold_reason",
            "skip_reason",
            "detail",
            "channel_id",
            "channel_kind",
            "interaction_id",
            "message_status",
            "sent_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_channel_kind(self, obj: CampaignRecipient) -> str:
        return obj.channel.kind if obj.channel else ""

    def get_message_status(self, obj: CampaignRecipient) -> str:
        return obj.interaction.status if obj.interaction else ""


class RecipientPagination(CursorPagination):
    ordering = ("id",)
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class CampaignPreviewSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    variant = serializers.CharField(required=False, max_length=16)


class CampaignTestSendSerializer(serializers.Serializer):
    addresses = serializers.ListField(
        child=serializers.CharField(max_length=320), min_length=1, max_length=10
    )
    as_customer_id = serializers.IntegerField(required=False)
    variant = serializers.CharField(required=False, max_length=16)


RUN = OpenApiParameter("run", int, description="One run's rows only")
STATE = OpenApiParameter("state", str, enum=list(RecipientState.values))
VARIANT = OpenApiParameter("variant", str)


# ---------------------------------------------------------------- views


class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Campaigns: content per channel, a segment, a schedule; launched, paused, resumed, cancelled here.
    Errors are RFC 9457 problem details with a machine-readable ``code`` (``campaign_invalid``,
    ``content_invalid`` with ``problems``, ``approval_required``, ``campaign_state``…)."""

    extra_query_params = ("run", "state", "variant", "page_size")

    serializer_class = CampaignSerializer
    permission_classes = [*viewsets.GenericViewSet.permission_classes, CanRunCampaigns]

    class Pagination(CursorPagination):
        ordering = ("-created_at", "-id")
        page_size = 50

    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Campaign]:
        if getattr(self, "swagger_fake_view", False):
            return Campaign.objects.none()
        return Campaign.objects.filter(workspace=_workspace(self.request))

    def _fields(self, data: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in data.items() if k in CONTENT_FIELDS}
        if "variants" in out:
            out["variants"] = [dict(v) for v in out["variants"]]
        return out

    @extend_schema(request=CampaignWriteSerializer, responses={201: CampaignSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = CampaignWriteSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        campaign = campaign_create(
            workspace=_workspace(request), actor=_actor(request), **self._fields(dict(ser.validated_data))
        )
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CampaignWriteSerializer, responses=CampaignSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = CampaignWriteSerializer(data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        campaign = campaign_update(
            campaign=self.get_object(), actor=_actor(request), **self._fields(dict(ser.validated_data))
        )
        return Response(CampaignSerializer(campaign).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        campaign_delete(campaign=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _state_action(self, service: Any, **kwargs: Any) -> Response:
        campaign = service(campaign=self.get_object(), **kwargs)
        return Response(CampaignSerializer(campaign).data)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def launch(self, request: Request, pk: str | None = None) -> Response:
        """Lint, check approval, then start now / schedule it (see ``campaign_launch``)."""
        return self._state_action(campaign_launch, actor=_actor(request))

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """An admin other than the author approves a draft above the approval threshold."""
        return self._state_action(campaign_approve, actor=_actor(request))

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        """Stop claiming and hold queued messages; takes effect within a batch (< 2 s)."""
        return self._state_action(campaign_pause)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Continue with the rows not sent yet."""
        return self._state_action(campaign_resume)

    @extend_schema(request=None, responses=CampaignSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop for good: unsent rows are skipped ("cancelled")."""
        return self._state_action(campaign_cancel)

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def lint(self, request: Request, pk: str | None = None) -> Response:
        """Content problems per field ("sms.body": [...]); empty when it can launch."""
        return Response({"problems": campaign_lint(campaign=self.get_object())})

    @extend_schema(request=CampaignPreviewSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """The message as one customer would get it, on each of the campaign's channel kinds."""
        ser = CampaignPreviewSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        campaign = self.get_object()
        customer = _customer(campaign.workspace_id, ser.validated_data["customer_id"])
        return Response(
            campaign_preview(campaign=campaign, customer=customer, variant=ser.validated_data.get("variant"))
        )

    @extend_schema(request=CampaignTestSendSerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send to up to 10 addresses through the real path, marked as a test, left out of the stats."""
        ser = CampaignTestSendSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        campaign = self.get_object()
        as_id = ser.validated_data.get("as_customer_id")
        sent = campaign_test_send(
            campaign=campaign,
            addresses=ser.validated_data["addresses"],
            as_customer=_customer(campaign.workspace_id, as_id) if as_id else None,
            variant=ser.validated_data.get("variant"),
            actor=_actor(request),
        )
        return Response(
            {"interactions": [{"id": i.pk, "status": i.status, "to": i.customer_address} for i in sent]},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(parameters=[RUN], responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str | None = None) -> Response:
        """Counts per campaign, variant and run, from the recipient rows (they reconcile exactly)."""
        campaign = self.get_object()
        return Response(campaign_stats(campaign=campaign, run=_run(campaign, request)))

    @extend_schema(parameters=[RUN, STATE, VARIANT], responses=RecipientSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=RecipientPagination)
    def recipients(self, request: Request, pk: str | None = None) -> Response:
        """The recipient rows with their state, hold and skip reasons (cursor pagination)."""
        campaign = self.get_object()
        rows = campaign_recipients(
            campaign=campaign,
            run=_run(campaign, request),
            state=request.query_params.get("state", ""),
            variant=request.query_params.get("variant", ""),
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(RecipientSerializer(page, many=True).data)

    @extend_schema(parameters=[RUN], responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"], url_path="recipients/export")
    def export(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        """All recipient rows as CSV (streamed)."""
        campaign = self.get_object()
        response = StreamingHttpResponse(
            campaign_recipients_csv(campaign=campaign, run=_run(campaign, request)), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-recipients.csv"'
        return response


def _customer(workspace_id: int, customer_id: int) -> Customer:
    found = Customer.objects.filter(workspace_id=workspace_id, pk=customer_id).first()
    if found is None:
        raise NotFound("no such customer in this workspace", field="customer_id")
    return found


def _run(campaign: Campaign, request: Request) -> CampaignRun | None:
    raw = request.query_params.get("run")
    if not raw:
        return None
    found = CampaignRun.objects.filter(campaign=campaign, pk=int(raw) if raw.isdigit() else -1).first()
    if found is None:
        raise NotFound("no such run of this campaign", field="run")
    return found
