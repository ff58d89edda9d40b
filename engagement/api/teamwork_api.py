"""REST API of the team tools, on the console's services (``engagement.services.teamwork``):
conversation assignment, status (resolve, reopen, snooze), labels and private notes (actions on
``/conversations/{id}/``, in ``conversations_api``), teams (read; write for admins and API keys),
labels (read) and canned responses (CRUD)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from engagement.models import CannedResponse, Label, Note, Role, Team
from engagement.services import teamwork

from .base import ContractCursorPagination, ContractViewSet, WritesByRole
from .base import request_workspace as _workspace


class ByName(ContractCursorPagination):
    ordering = ("name", "id")


class ByShortcut(ContractCursorPagination):
    ordering = ("shortcut", "id")


class OldestFirst(ContractCursorPagination):
    ordering = ("created_at", "id")


# ---------------------------------------------------------------- serializers


class TeamSerializer(serializers.ModelSerializer):
    member_ids = serializers.SerializerMethodField(help_text="User ids of the members.")
    channel_ids = serializers.SerializerMethodField(
        help_text="Channels whose new conversations the team takes (automatic assignment)."
    )

    class Meta:
        model = Team
        fields = ["id", "name", "member_ids", "channel_ids", "auto_assign", "capacity", "created_at"]
        read_only_fields = fields

    def get_member_ids(self, team: Team) -> list[int]:
        return sorted(u.pk for u in team.members.all())

    def get_channel_ids(self, team: Team) -> list[int]:
        return sorted(c.pk for c in team.channels.all())


class TeamWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, max_length=1000
    )
    channel_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, max_length=1000
    )
    auto_assign = serializers.BooleanField(
        required=False, help_text="Round-robin new conversations of the team's channels among online members."
    )
    capacity = serializers.IntegerField(
        min_value=0, max_value=1000, required=False, help_text="Open threads per member; 0: no limit."
    )


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "created_at"]
        read_only_fields = fields


class NoteSerializer(serializers.ModelSerializer):
    mentioned_user_ids = serializers.SerializerMethodField(help_text="Members named with @username.")

    class Meta:
        model = Note
        fields = [
            "id",
            "customer_id",
            "conversation_id",
            "author_id",
            "body",
            "mentioned_user_ids",
            "created_at",
        ]
        read_only_fields = fields

    def get_mentioned_user_ids(self, note: Note) -> list[int]:
        return sorted(u.pk for u in note.mentions.all())


class NoteCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=5000, help_text="Private; @username notifies that member.")


class CannedResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = CannedResponse
        fields = ["id", "shortcut", "title", "body", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "shortcut": {"help_text": "Typed after / in the reply box: letters, digits, - and _."},
            "body": {"help_text": "Text with {{ customer.first_name }}-style variables.", "max_length": 5000},
        }


# ---------------------------------------------------------------- permissions


class TeamWrites(WritesByRole):
    """Reads for everyone in the workspace; writes for API keys (their write scope) and admins."""

    roles = (Role.ADMIN,)
    message = "changing teams is for workspace admins"


# ---------------------------------------------------------------- views


class TeamFilter(django_filters.FilterSet):
    member = django_filters.NumberFilter(field_name="members", help_text="Teams this user belongs to.")

    class Meta:
        model = Team
        fields = ["member"]


class TeamViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ContractViewSet,
):
    """Teams: members, the channels they take new conversations from, automatic round-robin assignment
    among online members and a capacity (open threads per member). Writes: admins and API keys with
    ``conversations:write``."""

    serializer_class = TeamSerializer
    filterset_class = TeamFilter
    pagination_class = ByName
    scope_area = "conversations"
    permission_classes = [*ContractViewSet.permission_classes, TeamWrites]

    def get_queryset(self) -> QuerySet[Team]:
        if getattr(self, "swagger_fake_view", False):
            return Team.objects.none()
        return Team.objects.filter(workspace=_workspace(self.request)).prefetch_related("members", "channels")

    def _save(self, request: Request, team: Team | None, partial: bool) -> Team:
        ser = TeamWriteSerializer(data=request.data, partial=partial)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        current = team
        data = teamwork.TeamInput(
            name=d.get("name", current.name if current else ""),
            member_ids=d["member_ids"]
            if "member_ids" in d
            else sorted(u.pk for u in current.members.all())
            if current
            else [],
            channel_ids=d["channel_ids"]
            if "channel_ids" in d
            else sorted(c.pk for c in current.channels.all())
            if current
            else [],
            auto_assign=d.get("auto_assign", current.auto_assign if current else False),
            capacity=d.get("capacity", current.capacity if current else 0),
        )
        saved = teamwork.team_save(workspace=_workspace(request), data=data, team=team)
        return self.get_queryset().get(pk=saved.pk)

    @extend_schema(request=TeamWriteSerializer, responses={201: TeamSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(TeamSerializer(self._save(request, None, False)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamWriteSerializer, responses=TeamSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        team = self.get_object()
        return Response(TeamSerializer(self._save(request, team, kwargs.get("partial", False))).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        team = self.get_object()
        teamwork.team_delete(workspace=_workspace(request), team_id=team.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LabelFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(
        field_name="name", lookup_expr="istartswith", help_text="Name starts with."
    )

    class Meta:
        model = Label
        fields = ["name"]


class LabelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ContractViewSet):
    """The workspace's labels (created when first put on a conversation)."""

    serializer_class = LabelSerializer
    filterset_class = LabelFilter
    pagination_class = ByName
    scope_area = "conversations"

    def get_queryset(self) -> QuerySet[Label]:
        if getattr(self, "swagger_fake_view", False):
            return Label.objects.none()
        return Label.objects.filter(workspace=_workspace(self.request))


class CannedResponseFilter(django_filters.FilterSet):
    shortcut = django_filters.CharFilter(
        field_name="shortcut", lookup_expr="istartswith", help_text="Shortcut starts with."
    )

    class Meta:
        model = CannedResponse
        fields = ["shortcut"]


class CannedResponseViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ContractViewSet,
):
    """Canned responses agents insert with ``/shortcut``; the body's variables are checked on save."""

    serializer_class = CannedResponseSerializer
    filterset_class = CannedResponseFilter
    pagination_class = ByShortcut
    scope_area = "conversations"

    def get_queryset(self) -> QuerySet[CannedResponse]:
        if getattr(self, "swagger_fake_view", False):
            return CannedResponse.objects.none()
        return CannedResponse.objects.filter(workspace=_workspace(self.request))

    def _save(self, request: Request, canned: CannedResponse | None, partial: bool) -> CannedResponse:
        ser = CannedResponseSerializer(canned, data=request.data, partial=partial)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        return teamwork.canned_response_save(
            workspace=_workspace(request),
            shortcut=d.get("shortcut", canned.shortcut if canned else ""),
            title=d.get("title", canned.title if canned else ""),
            body=d.get("body", canned.body if canned else ""),
            canned=canned,
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        canned = self._save(request, None, False)
        return Response(CannedResponseSerializer(canned).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        canned = self._save(request, self.get_object(), kwargs.get("partial", False))
        return Response(CannedResponseSerializer(canned).data)
