"""REST API for channels (read), conversations and their interactions. Thin: querysets scoped to the
request's workspace; the status change goes through ``engagement.services.conversation_actions`` as the
console's does."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from engagement.models import Channel, ChannelKind, Conversation, Interaction, Label, Note
from engagement.models.conversations import ConversationStatus, Direction, InteractionKind
from engagement.services import teamwork

from .base import ContractCursorPagination, ContractViewSet
from .base import request_workspace as _workspace
from .serializers import InteractionSerializer
from .teamwork_api import NoteCreateSerializer, NoteSerializer, OldestFirst


class ChannelSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = Channel
        fields = ["id", "kind", "provider", "name", "address", "active"]
        read_only_fields = fields


class ChannelFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ChannelKind.choices, help_text="Only channels of this kind.")
    active = django_filters.BooleanFilter(field_name="is_active", help_text="Only active (or inactive) ones.")

    class Meta:
        model = Channel
        fields = ["kind", "active"]


class ChannelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ContractViewSet):
    """The workspace's channels: the ``id`` is the ``channel_id`` a send (``POST /messages/``) needs."""

    serializer_class = ChannelSerializer
    filterset_class = ChannelFilter
    pagination_class = ContractCursorPagination
    scope_area = "channels"

    def get_queryset(self) -> QuerySet[Channel]:
        if getattr(self, "swagger_fake_view", False):
            return Channel.objects.none()
        return Channel.objects.filter(workspace=_workspace(self.request))


class ConversationSerializer(serializers.ModelSerializer):
    assignee_id = serializers.IntegerField(read_only=True, allow_null=True)
    team_id = serializers.IntegerField(read_only=True, allow_null=True)
    labels: serializers.SlugRelatedField[Label] = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="name"
    )

    class Meta:
        model = Conversation
        fields = [
            "id",
            "customer_id",
            "channel_id",
            "status",
            "subject",
            "assignee_id",
            "team_id",
            "labels",
            "snoozed_until",
            "last_activity_at",
            "last_message_preview",
            "created_at",
        ]
        read_only_fields = fields


class ConversationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ConversationStatus.choices)
    snoozed_until = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text='With status "snoozed": when it opens again (future); absent or null: at the '
        "customer's next message.",
    )


class ConversationAssignSerializer(serializers.Serializer):
    assignee_id = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, allow_null=True, help_text="A member's user id; null: unassigned."
    )
    team_id = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        allow_null=True,
        required=False,
        help_text="A team id; null: no team; absent: the team stays.",
    )


class ConversationLabelsSerializer(serializers.Serializer):
    add = serializers.ListField(
        child=serializers.CharField(max_length=50),
        required=False,
        max_length=50,
        help_text="Created on first use.",
    )
    remove = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)


class ConversationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ConversationStatus.choices, help_text="open, resolved…")
    channel = django_filters.NumberFilter(field_name="channel_id", help_text="A channel id.")
    customer = django_filters.NumberFilter(field_name="customer_id", help_text="A customer id.")
    assignee = django_filters.NumberFilter(field_name="assignee_id", help_text="An assignee's user id.")
    unassigned = django_filters.BooleanFilter(
        field_name="assignee", lookup_expr="isnull", help_text="true: only conversations nobody holds."
    )
    team = django_filters.NumberFilter(field_name="team_id", help_text="A team id.")
    label = django_filters.CharFilter(
        field_name="labels__name", lookup_expr="iexact", help_text="A label's name.", distinct=True
    )

    class Meta:
        model = Conversation
        fields = ["status", "channel", "customer", "assignee", "unassigned", "team", "label"]


class InteractionFilter(django_filters.FilterSet):
    customer = django_filters.NumberFilter(field_name="customer_id", help_text="A customer id.")
    conversation = django_filters.NumberFilter(field_name="conversation_id", help_text="A conversation id.")
    channel = django_filters.NumberFilter(field_name="channel_id", help_text="A channel id.")
    kind = django_filters.ChoiceFilter(choices=InteractionKind.choices)
    direction = django_filters.ChoiceFilter(choices=Direction.choices)

    class Meta:
        model = Interaction
        fields = ["customer", "conversation", "channel", "kind", "direction"]


class ConversationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ContractViewSet):
    """Conversations, newest activity first; ``POST {id}/status/`` resolves or reopens one."""

    serializer_class = ConversationSerializer
    filterset_class = ConversationFilter
    scope_area = "conversations"

    class pagination_class(ContractCursorPagination):
        ordering = ("-last_activity_at", "-id")

    def get_queryset(self) -> QuerySet[Conversation]:
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        return Conversation.objects.filter(workspace=_workspace(self.request)).prefetch_related("labels")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        teamwork.conversations_wake_due(workspace=_workspace(request))  # snoozes that ended since the beat
        return super().list(request, *args, **kwargs)

    def _fresh(self, conversation: Conversation) -> Response:
        return Response(ConversationSerializer(self.get_queryset().get(pk=conversation.pk)).data)

    @extend_schema(request=ConversationStatusSerializer, responses=ConversationSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def status(self, request: Request, pk: str | None = None) -> Response:
        """Resolve, reopen, mark pending, or snooze (until ``snoozed_until`` or the customer's next
        message). Publishes ``conversation.updated`` (webhooks: ``conversation.resolved`` /
        ``conversation.reopened``)."""
        conversation = self.get_object()
        ser = ConversationStatusSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        teamwork.conversations_status_set(
            workspace=_workspace(request),
            conversations=[conversation],
            status=ser.validated_data["status"],
            snoozed_until=ser.validated_data.get("snoozed_until"),
            actor=request.user if request.user.is_authenticated else None,
        )
        return self._fresh(conversation)

    @extend_schema(request=ConversationAssignSerializer, responses=ConversationSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def assign(self, request: Request, pk: str | None = None) -> Response:
        """Give the conversation to a member of the workspace (and/or a team); publishes
        ``conversation.assigned``. Refused (400 ``assignment_invalid`` / ``team_invalid``) for a user
        or team outside the workspace."""
        conversation = self.get_object()
        ser = ConversationAssignSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        teamwork.conversation_assign(
            workspace=_workspace(request),
            conversations=[conversation],
            assignee_id=ser.validated_data["assignee_id"],
            team_id=ser.validated_data.get("team_id", teamwork.KEEP),
        )
        return self._fresh(conversation)

    @extend_schema(request=ConversationLabelsSerializer, responses=ConversationSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def labels(self, request: Request, pk: str | None = None) -> Response:
        """Add labels (created on first use; names are trimmed and lower-cased) and remove labels."""
        conversation = self.get_object()
        ser = ConversationLabelsSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        teamwork.conversation_labels_change(
            workspace=_workspace(request),
            conversations=[conversation],
            add=ser.validated_data.get("add", []),
            remove=ser.validated_data.get("remove", []),
        )
        return self._fresh(conversation)

    @extend_schema(methods=["GET"], responses=NoteSerializer(many=True))
    @extend_schema(methods=["POST"], request=NoteCreateSerializer, responses={201: NoteSerializer})
    @action(detail=True, methods=["get", "post"], filterset_class=None, pagination_class=OldestFirst)
    def notes(self, request: Request, pk: str | None = None) -> Response:
        """The private notes written on this conversation, oldest first; POST writes one (``@username``
        mentions notify those members; publishes ``note.created``). Notes are never sent to the customer."""
        conversation = self.get_object()
        if request.method == "POST":
            ser = NoteCreateSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            note = teamwork.note_create(
                workspace=_workspace(request),
                customer=conversation.customer,
                conversation=conversation,
                body=ser.validated_data["body"],
                author_id=request.user.pk if request.user.is_authenticated else None,
            )
            return Response(NoteSerializer(note).data, status=201)
        notes = Note.objects.filter(
            workspace=_workspace(request), conversation=conversation
        ).prefetch_related("mentions")
        page = self.paginate_queryset(notes)
        return self.get_paginated_response(NoteSerializer(page, many=True).data)


class InteractionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ContractViewSet):
    """Interactions (messages, calls, notes…) of the workspace, newest first; filter by customer or
    conversation for a timeline."""

    serializer_class = InteractionSerializer
    filterset_class = InteractionFilter
    pagination_class = ContractCursorPagination
    scope_area = "messages"

    def get_queryset(self) -> QuerySet[Interaction]:
        if getattr(self, "swagger_fake_view", False):
            return Interaction.objects.none()
        return Interaction.objects.filter(workspace=_workspace(self.request)).select_related("channel")
