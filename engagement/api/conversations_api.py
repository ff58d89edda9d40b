"""REST API for channels (read), conversations and their interactions. Thin: querysets scoped to the
request's workspace; the status change goes through ``engagement.services.conversation_actions`` as the
console's does."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from engagement.models import Channel, ChannelKind, Conversation, Interaction, Workspace
from engagement.models.conversations import ConversationStatus, Direction, InteractionKind
from engagement.services.conversation_actions import conversation_status_set

from .base import ContractCursorPagination, ContractViewSet
from .serializers import InteractionSerializer


def _workspace(request: Request) -> Workspace:
    return request.workspace  # type: ignore[attr-defined]


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
    class Meta:
        model = Conversation
        fields = [
            "id",
            "customer_id",
            "channel_id",
            "status",
            "subject",
            "assignee_id",
            "last_activity_at",
            "last_message_preview",
            "created_at",
        ]
        read_only_fields = fields


class ConversationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ConversationStatus.choices)


class ConversationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ConversationStatus.choices, help_text="open, resolved…")
    channel = django_filters.NumberFilter(field_name="channel_id", help_text="A channel id.")
    customer = django_filters.NumberFilter(field_name="customer_id", help_text="A customer id.")

    class Meta:
        model = Conversation
        fields = ["status", "channel", "customer"]


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
        return Conversation.objects.filter(workspace=_workspace(self.request))

    @extend_schema(request=ConversationStatusSerializer, responses=ConversationSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def status(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        ser = ConversationStatusSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        conversation_status_set(
            workspace=_workspace(request), conversation=conversation, status=ser.validated_data["status"]
        )
        return Response(ConversationSerializer(conversation).data)


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
