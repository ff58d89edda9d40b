"""REST API for journeys, their versions and enrollments, and the track endpoint for custom events.
Thin: scoped to the request's workspace; every change goes through ``engagement.journeys.services``
(and ``customers.events.customer_events_track``).

Reading is open to every member and API key; editing journeys to API keys, admins and marketers;
removing a customer from a journey to agents as well.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from customers.events import MAX_TRACK_BATCH, customer_events_track
from customers.models import Customer
from engagement.errors import NotFound
from engagement.journeys.services import (
    enrollment_remove,
    journey_archive,
    journey_create,
    journey_delete,
    journey_enroll,
    journey_pause,
    journey_publish,
    journey_resume,
    journey_stats,
    journey_update,
)
from engagement.models import (
    ApiKey,
    Enrollment,
    EnrollmentState,
    Journey,
    JourneyStatus,
    JourneyVersion,
    ReentryPolicy,
    Role,
)
from engagement.services.tenancy import membership_for_user

from .base import ContractAPIView, ContractCursorPagination, ContractViewSet
from .base import request_workspace as _workspace

JOURNEY_EDITORS = (Role.ADMIN, Role.MARKETER)


def _actor(request: Request) -> Any:
    return request.user if request.user.is_authenticated else None


class CanEditJourneys(BasePermission):
    """Reads for everyone in the workspace; writes for API keys, admins and marketers; removing an
    enrollment for agents too (an agent takes a customer out of a journey from the profile)."""

    message = "changing journeys is for admins and marketers"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS or isinstance(request.auth, ApiKey):
            return True
        membership = membership_for_user(user=request.user, workspace_id=_workspace(request).pk)
        if membership is None:
            return False
        if getattr(view, "action", "") == "remove":
            return True
        return membership.role in JOURNEY_EDITORS


# ---------------------------------------------------------------- serializers


class JourneySerializer(serializers.ModelSerializer):
    live_version = serializers.SerializerMethodField(
        help_text="The live version's number (null: never published)."
    )

    class Meta:
        model = Journey
        fields = [
            "id",
            "name",
            "description",
            "status",
            "reentry",
            "purpose",
            "definition",
            "goal",
            "exit_conditions",
            "trigger_type",
            "live_version",
            "automation_rule_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_live_version(self, obj: Journey) -> int | None:
        return obj.live_version.number if obj.live_version_id and obj.live_version else None


class JourneyWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    reentry = serializers.ChoiceField(choices=ReentryPolicy.choices, default=ReentryPolicy.ONCE_AT_A_TIME)
    purpose = serializers.ChoiceField(
        choices=[("transactional", "transactional"), ("marketing", "marketing")], default="transactional"
    )
    definition = serializers.JSONField(
        required=False,
        help_text='{"trigger": {"type": "call.missed"}, "steps": [{"type": "send", ...}, ...]}; validated at '
        "publish (engagement/journeys/definition.py lists every trigger and step).",
    )
    goal = serializers.JSONField(required=False, help_text='e.g. {"type": "event", "name": "order_placed"}')
    exit_conditions = serializers.JSONField(required=False, help_text='e.g. [{"type": "reply"}]')


class JourneyVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = JourneyVersion
        fields = ["id", "number", "definition", "goal", "exit_conditions", "created_at"]
        read_only_fields = fields


class EnrollmentSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Enrollment
        fields = [
            "id",
            "journey_id",
            "version",
            "customer_id",
            "state",
            "current_step",
            "waiting_for",
            "wait_detail",
            "due_at",
            "exit_reason",
            "context",
            "entered_at",
            "finished_at",
        ]
        read_only_fields = fields


class EnrollSerializer(serializers.Serializer):
    journey_id = serializers.IntegerField()
    customer_id = serializers.IntegerField()


class JourneyFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=JourneyStatus.choices, help_text="draft, live, paused…")
    trigger_type = django_filters.CharFilter(help_text="Journeys started by this trigger (call.missed…).")

    class Meta:
        model = Journey
        fields = ["status", "trigger_type"]


class EnrollmentFilter(django_filters.FilterSet):
    journey = django_filters.NumberFilter(field_name="journey_id", help_text="A journey id.")
    customer = django_filters.NumberFilter(field_name="customer_id", help_text="A customer id.")
    state = django_filters.ChoiceFilter(choices=EnrollmentState.choices)
    step = django_filters.CharFilter(field_name="current_step", help_text="At this step key.")

    class Meta:
        model = Enrollment
        fields = ["journey", "customer", "state", "step"]


class StatsSerializer(serializers.Serializer):
    steps = serializers.DictField(
        child=serializers.DictField(),
        help_text="Step key → entered, waiting, sent, skipped (by reason), outcomes.",
    )
    enrollments = serializers.DictField(child=serializers.IntegerField())
    exited_by_goal = serializers.IntegerField()


class TrackSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=serializers.DictField(),
        help_text=f"1 to {MAX_TRACK_BATCH} events: name, event_id (your idempotency key), properties, "
        "occurred_at (ISO 8601 with zone), and the customer by customer_id, email, phone or external_id "
        "(an unknown one is created).",
    )


class TrackedSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    customer_id = serializers.IntegerField()
    created = serializers.BooleanField(help_text="False: this event_id was recorded before.")
    customer_created = serializers.BooleanField()


class TrackResultSerializer(serializers.Serializer):
    recorded = serializers.IntegerField(help_text="New events in this batch.")
    events = TrackedSerializer(many=True)


# ---------------------------------------------------------------- views


class JourneyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ContractViewSet,
):
    """Journeys: a trigger and steps with branches. Edit the draft, then ``POST {id}/publish/`` makes it
    the next version (400 ``journey_invalid`` naming the step and field when it does not validate);
    enrollments in flight finish on their version."""

    serializer_class = JourneySerializer
    filterset_class = JourneyFilter
    pagination_class = ContractCursorPagination
    permission_classes = [*ContractViewSet.permission_classes, CanEditJourneys]
    scope_area = "journeys"

    def get_queryset(self) -> QuerySet[Journey]:
        if getattr(self, "swagger_fake_view", False):
            return Journey.objects.none()
        return Journey.objects.filter(workspace=_workspace(self.request)).select_related("live_version")

    @extend_schema(request=JourneyWriteSerializer, responses={201: JourneySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = JourneyWriteSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        journey = journey_create(workspace=_workspace(request), actor=_actor(request), **ser.validated_data)
        return Response(JourneySerializer(journey).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=JourneyWriteSerializer, responses=JourneySerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = JourneyWriteSerializer(data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        journey = journey_update(journey=self.get_object(), **ser.validated_data)
        return Response(JourneySerializer(journey).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        journey_delete(journey=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={201: JourneyVersionSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Validate the draft and make it the live version (the next number)."""
        version = journey_publish(journey=self.get_object(), actor=_actor(request))
        return Response(JourneyVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=JourneySerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return Response(JourneySerializer(journey_pause(journey=self.get_object())).data)

    @extend_schema(request=None, responses=JourneySerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return Response(JourneySerializer(journey_resume(journey=self.get_object())).data)

    @extend_schema(request=None, responses=JourneySerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def archive(self, request: Request, pk: str | None = None) -> Response:
        """Stop for good; active enrollments are removed."""
        return Response(JourneySerializer(journey_archive(journey=self.get_object())).data)

    @extend_schema(responses=JourneyVersionSerializer(many=True))
    @action(detail=True, methods=["get"], filterset_class=None)
    def versions(self, request: Request, pk: str | None = None) -> Response:
        """The published versions, newest first (cursor pagination)."""
        rows = JourneyVersion.objects.filter(journey=self.get_object())
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(JourneyVersionSerializer(page, many=True).data)

    @extend_schema(responses=StatsSerializer)
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def stats(self, request: Request, pk: str | None = None) -> Response:
        """Per step: entered, waiting, sent, skipped by reason; enrollments by state; exited by goal."""
        return Response(journey_stats(journey=self.get_object()))


class EnrollmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ContractViewSet):
    """Enrollments: who is in which journey, at which step and why. ``POST`` enrolls a customer (409
    ``enrollment_refused`` when the re-entry policy says no); ``POST {id}/remove/`` takes them out."""

    serializer_class = EnrollmentSerializer
    filterset_class = EnrollmentFilter
    permission_classes = [*ContractViewSet.permission_classes, CanEditJourneys]
    scope_area = "journeys"

    class pagination_class(ContractCursorPagination):
        ordering = ("-entered_at", "-id")

    def get_queryset(self) -> QuerySet[Enrollment]:
        if getattr(self, "swagger_fake_view", False):
            return Enrollment.objects.none()
        return Enrollment.objects.filter(workspace=_workspace(self.request)).select_related("version")

    @extend_schema(request=EnrollSerializer, responses={201: EnrollmentSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = EnrollSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        workspace = _workspace(request)
        journey = Journey.objects.filter(workspace=workspace, pk=ser.validated_data["journey_id"]).first()
        if journey is None:
            raise NotFound("no such journey in this workspace", field="journey_id")
        customer = Customer.objects.filter(workspace=workspace, pk=ser.validated_data["customer_id"]).first()
        if customer is None:
            raise NotFound("no such customer in this workspace", field="customer_id")
        enrollment = journey_enroll(journey=journey, customer=customer)
        return Response(EnrollmentSerializer(enrollment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=EnrollmentSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def remove(self, request: Request, pk: str | None = None) -> Response:
        """Take the customer out of the journey now: pending steps are cancelled (409 when it ended)."""
        enrollment = enrollment_remove(enrollment=self.get_object(), actor=_actor(request))
        return Response(EnrollmentSerializer(enrollment).data)


class EventTrackView(ContractAPIView):
    """Custom events: ``POST`` a batch of up to 500; each is recorded once per ``event_id``, on the
    customer its identifiers name (created when unknown), shown on their timeline, and starts, advances
    or ends their journeys. A bad row answers 400 naming it (``events[3].email: …``) and records none."""

    scope_area = "events"
    serializer_class = TrackSerializer

    @extend_schema(request=TrackSerializer, responses={200: TrackResultSerializer})
    def post(self, request: Request) -> Response:
        ser = TrackSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        tracked = customer_events_track(workspace=_workspace(request), batch=ser.validated_data["events"])
        return Response(
            {
                "recorded": sum(1 for t in tracked if t.created),
                "events": [
                    {
                        "index": t.index,
                        "id": t.event.pk,
                        "event_id": t.event.event_id,
                        "customer_id": t.event.customer_id,
                        "created": t.created,
                        "customer_created": t.customer_created,
                    }
                    for t in tracked
                ],
            }
        )
