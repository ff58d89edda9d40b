"""REST API of the console's service-level and satisfaction settings and of agent tasks, on the same
services as the console pages (``engagement.services.sla``, ``engagement.services.csat``,
``engagement.journeys.services``):

- ``sla-policies`` (CRUD; writes for admins and API keys), ``sla-breaches`` (read);
- ``business-hours`` and ``csat-settings``: one document per workspace, ``GET`` and ``PUT``;
- ``csat-responses`` (read): the customers' answers to the survey;
- ``agent-tasks`` (read; ``POST {id}/complete/``): the to-dos journeys create for agents.

All in the ``conversations`` scope area."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from engagement.journeys.services import agent_task_complete
from engagement.models import (
    AgentTask,
    BusinessHours,
    CsatResponse,
    Role,
    SlaBreach,
    SlaMetric,
    SlaPolicy,
)
from engagement.models.channels import ChannelKind
from engagement.models.insights import CsatSource
from engagement.services import csat as csat_services
from engagement.services import sla

from .base import (
    ContractAPIView,
    ContractCursorPagination,
    ContractViewSet,
    WritesByRole,
    request_actor,
    request_workspace,
)

MAX_TARGET_MINUTES = 525_600  # a year


class AdminWrites(WritesByRole):
    """Reads for everyone in the workspace; writes for API keys (their write scope) and admins, as the
    console's settings page."""

    roles = (Role.ADMIN,)
    message = "changing service-level and survey settings is for workspace admins"


class ByPosition(ContractCursorPagination):
    ordering = ("position", "id")


class NewestBreachFirst(ContractCursorPagination):
    ordering = ("-breached_at", "-id")


class NewestAnswerFirst(ContractCursorPagination):
    ordering = ("-responded_at", "-id")


# ---------------------------------------------------------------- SLA policies


def _target(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1, max_value=MAX_TARGET_MINUTES, allow_null=True, required=False, help_text=help_text
    )


class SlaPolicySerializer(serializers.ModelSerializer):
    channel_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=ChannelKind.choices),
        help_text="Channel kinds the policy covers; empty: every channel.",
    )

    class Meta:
        model = SlaPolicy
        fields = [
            "id",
            "name",
            "position",
            "first_response_minutes",
            "next_response_minutes",
            "resolution_minutes",
            "business_hours_only",
            "channel_kinds",
            "is_active",
            "created_at",
        ]
        read_only_fields = fields


class SlaPolicyWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    position = serializers.IntegerField(
        min_value=0, max_value=32767, required=False, help_text="Lower first: the first active match applies."
    )
    first_response_minutes = _target("Minutes from the customer's first message to a person's reply.")
    next_response_minutes = _target("Minutes from a customer's message to the next reply after one.")
    resolution_minutes = _target("Minutes from opening (or reopening) to resolving.")
    business_hours_only = serializers.BooleanField(
        required=False, help_text="Count only the workspace's business hours (default true)."
    )
    channel_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=ChannelKind.choices), required=False, max_length=20
    )
    is_active = serializers.BooleanField(required=False)


class SlaPolicyFilter(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter(field_name="is_active", help_text="Only (in)active policies.")

    class Meta:
        model = SlaPolicy
        fields = ["is_active"]


class SlaPolicyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ContractViewSet,
):
    """SLA policies: first response, next response and resolution targets in minutes, in business
    hours or wall-clock time, per channel kind. The first active policy by ``position`` that covers a
    conversation's channel applies. Writes: admins and API keys with ``conversations:write``."""

    serializer_class = SlaPolicySerializer
    filterset_class = SlaPolicyFilter
    pagination_class = ByPosition
    scope_area = "conversations"
    permission_classes = [*ContractViewSet.permission_classes, AdminWrites]

    def get_queryset(self) -> QuerySet[SlaPolicy]:
        if getattr(self, "swagger_fake_view", False):
            return SlaPolicy.objects.none()
        return SlaPolicy.objects.filter(workspace=request_workspace(self.request))

    def _save(self, request: Request, policy: SlaPolicy | None, partial: bool) -> SlaPolicy:
        ser = SlaPolicyWriteSerializer(data=request.data, partial=partial)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data

        def keep(name: str, default: Any) -> Any:
            return d[name] if name in d else getattr(policy, name) if policy is not None else default

        return sla.sla_policy_save(
            workspace=request_workspace(request),
            name=keep("name", ""),
            first_response_minutes=keep("first_response_minutes", None),
            next_response_minutes=keep("next_response_minutes", None),
            resolution_minutes=keep("resolution_minutes", None),
            business_hours_only=keep("business_hours_only", True),
            channel_kinds=keep("channel_kinds", []),
            is_active=keep("is_active", True),
            position=keep("position", 0),
            policy=policy,
        )

    @extend_schema(request=SlaPolicyWriteSerializer, responses={201: SlaPolicySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        policy = self._save(request, None, False)
        return Response(SlaPolicySerializer(policy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SlaPolicyWriteSerializer, responses=SlaPolicySerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        policy = self._save(request, self.get_object(), kwargs.get("partial", False))
        return Response(SlaPolicySerializer(policy).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        sla.sla_policy_delete(workspace=request_workspace(request), policy_id=self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SlaBreachSerializer(serializers.ModelSerializer):
    class Meta:
        model = SlaBreach
        fields = ["id", "conversation_id", "policy_id", "metric", "started_at", "due_at", "breached_at"]
        read_only_fields = fields


class SlaBreachFilter(django_filters.FilterSet):
    conversation = django_filters.NumberFilter(field_name="conversation_id", help_text="A conversation id.")
    metric = django_filters.ChoiceFilter(choices=SlaMetric.choices)

    class Meta:
        model = SlaBreach
        fields = ["conversation", "metric"]


class SlaBreachViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ContractViewSet):
    """Missed targets, newest first: one row per clock that ran past due (webhooks: ``sla.breached``)."""

    serializer_class = SlaBreachSerializer
    filterset_class = SlaBreachFilter
    pagination_class = NewestBreachFirst
    scope_area = "conversations"

    def get_queryset(self) -> QuerySet[SlaBreach]:
        if getattr(self, "swagger_fake_view", False):
            return SlaBreach.objects.none()
        return SlaBreach.objects.filter(workspace=request_workspace(self.request))


# ---------------------------------------------------------------- business hours


class BusinessHoursSerializer(serializers.Serializer):
    weekly = serializers.DictField(
        child=serializers.ListField(
            child=serializers.ListField(
                child=serializers.CharField(max_length=5), min_length=2, max_length=2
            ),
            max_length=12,
        ),
        help_text='ISO weekday ("1" Monday … "7" Sunday) → [["HH:MM", "HH:MM"], …]; a missing day is '
        'closed; "24:00" ends a day. Empty: open all the time.',
    )
    zone = serializers.CharField(read_only=True, help_text="The workspace's time zone the hours are in.")
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


class BusinessHoursView(ContractAPIView):
    """The workspace's business hours, which SLA policies with ``business_hours_only`` count in. ``PUT``
    replaces them (admins and API keys)."""

    scope_area = "conversations"
    pagination_class = None
    serializer_class = BusinessHoursSerializer
    permission_classes = [*ContractAPIView.permission_classes, AdminWrites]

    def get_object(self) -> BusinessHours | None:  # OPTIONS describes PUT on it
        return BusinessHours.objects.filter(workspace=request_workspace(self.request)).first()

    def _body(self, row: BusinessHours | None) -> dict[str, Any]:
        workspace = request_workspace(self.request)
        return {
            "weekly": row.weekly if row else {},
            "zone": workspace.timezone or "UTC",
            "updated_at": row.updated_at if row else None,
        }

    @extend_schema(responses=BusinessHoursSerializer, operation_id="business_hours_retrieve")
    def get(self, request: Request) -> Response:
        return Response(BusinessHoursSerializer(self._body(self.get_object())).data)

    @extend_schema(
        request=BusinessHoursSerializer,
        responses=BusinessHoursSerializer,
        operation_id="business_hours_update",
    )
    def put(self, request: Request) -> Response:
        ser = BusinessHoursSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        row = sla.business_hours_set(
            workspace=request_workspace(request), weekly=ser.validated_data["weekly"]
        )
        return Response(BusinessHoursSerializer(self._body(row)).data)


# ---------------------------------------------------------------- CSAT


class CsatSettingsSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="Send the survey after each resolution.")
    question = serializers.CharField(
        max_length=300, allow_blank=True, required=False, help_text="Empty: the default question."
    )
    reply_window_hours = serializers.IntegerField(
        min_value=1, max_value=720, required=False, help_text="How long an SMS/webchat digit counts (hours)."
    )
    default_question = serializers.CharField(read_only=True)


class CsatSettingsView(ContractAPIView):
    """Whether a one-question satisfaction survey follows each resolution, on the conversation's
    channel. ``PUT`` replaces the settings (admins and API keys)."""

    scope_area = "conversations"
    pagination_class = None
    serializer_class = CsatSettingsSerializer
    permission_classes = [*ContractAPIView.permission_classes, AdminWrites]

    def get_object(self) -> Any:  # OPTIONS describes PUT on it
        return csat_services.csat_settings_for(workspace=request_workspace(self.request))

    @staticmethod
    def _body(row: Any) -> dict[str, Any]:
        return {
            "enabled": row.enabled,
            "question": row.question,
            "reply_window_hours": row.reply_window_hours,
            "default_question": csat_services.DEFAULT_QUESTION,
        }

    @extend_schema(responses=CsatSettingsSerializer, operation_id="csat_settings_retrieve")
    def get(self, request: Request) -> Response:
        row = csat_services.csat_settings_for(workspace=request_workspace(request))
        return Response(CsatSettingsSerializer(self._body(row)).data)

    @extend_schema(
        request=CsatSettingsSerializer, responses=CsatSettingsSerializer, operation_id="csat_settings_update"
    )
    def put(self, request: Request) -> Response:
        ser = CsatSettingsSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        row = csat_services.csat_settings_set(
            workspace=request_workspace(request),
            enabled=d["enabled"],
            question=d.get("question", ""),
            reply_window_hours=d.get("reply_window_hours", 72),
        )
        return Response(CsatSettingsSerializer(self._body(row)).data)


class CsatResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = CsatResponse
        fields = [
            "id",
            "resolution_id",
            "conversation_id",
            "customer_id",
            "score",
            "comment",
            "source",
            "responded_at",
        ]
        read_only_fields = fields


class CsatResponseFilter(django_filters.FilterSet):
    conversation = django_filters.NumberFilter(field_name="conversation_id", help_text="A conversation id.")
    customer = django_filters.NumberFilter(field_name="customer_id", help_text="A customer id.")
    score = django_filters.NumberFilter(field_name="score", help_text="Only this score (1-5).")
    source = django_filters.ChoiceFilter(choices=CsatSource.choices)
    responded_after = django_filters.IsoDateTimeFilter(
        field_name="responded_at", lookup_expr="gte", help_text="Answered at or after (ISO 8601)."
    )
    responded_before = django_filters.IsoDateTimeFilter(
        field_name="responded_at", lookup_expr="lt", help_text="Answered before (ISO 8601)."
    )

    class Meta:
        model = CsatResponse
        fields = ["conversation", "customer", "score", "source", "responded_after", "responded_before"]


class CsatResponseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ContractViewSet):
    """The customers' survey answers (1-5), newest first (webhooks: ``csat.received``)."""

    serializer_class = CsatResponseSerializer
    filterset_class = CsatResponseFilter
    pagination_class = NewestAnswerFirst
    scope_area = "conversations"

    def get_queryset(self) -> QuerySet[CsatResponse]:
        if getattr(self, "swagger_fake_view", False):
            return CsatResponse.objects.none()
        return CsatResponse.objects.filter(workspace=request_workspace(self.request))


# ---------------------------------------------------------------- agent tasks


class AgentTaskSerializer(serializers.ModelSerializer):
    done = serializers.SerializerMethodField(help_text="Whether someone marked it done.")

    class Meta:
        model = AgentTask
        fields = [
            "id",
            "title",
            "detail",
            "customer_id",
            "conversation_id",
            "assignee_id",
            "due_at",
            "done",
            "done_at",
            "done_by_id",
            "enrollment_id",
            "created_at",
        ]
        read_only_fields = fields

    def get_done(self, task: AgentTask) -> bool:
        return task.done_at is not None


class AgentTaskFilter(django_filters.FilterSet):
    done = django_filters.BooleanFilter(
        field_name="done_at", lookup_expr="isnull", exclude=True, help_text="false: open tasks only."
    )
    assignee = django_filters.NumberFilter(field_name="assignee_id", help_text="An assignee's user id.")
    unassigned = django_filters.BooleanFilter(
        field_name="assignee", lookup_expr="isnull", help_text="true: only tasks nobody holds."
    )
    customer = django_filters.NumberFilter(field_name="customer_id", help_text="A customer id.")
    conversation = django_filters.NumberFilter(field_name="conversation_id", help_text="A conversation id.")

    class Meta:
        model = AgentTask
        fields = ["done", "assignee", "unassigned", "customer", "conversation"]


class AgentTaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ContractViewSet):
    """Agent tasks ("Call this customer back"), made by journeys' create-task steps, newest first;
    ``POST {id}/complete/`` marks one done (idempotent: a done task keeps its first time and author)."""

    serializer_class = AgentTaskSerializer
    filterset_class = AgentTaskFilter
    pagination_class = ContractCursorPagination
    scope_area = "conversations"

    def get_queryset(self) -> QuerySet[AgentTask]:
        if getattr(self, "swagger_fake_view", False):
            return AgentTask.objects.none()
        return AgentTask.objects.filter(workspace=request_workspace(self.request))

    @extend_schema(request=None, responses=AgentTaskSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def complete(self, request: Request, pk: str | None = None) -> Response:
        task = agent_task_complete(task=self.get_object(), actor=request_actor(request))
        return Response(AgentTaskSerializer(task).data)
