"""REST API for segments. Thin: scoped to the request's workspace; every write and every count goes
through ``engagement.segments.services``.

Reading is open to every member and API key; changing segments to API keys, admins and marketers.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from customers.consent import SendPurpose
from customers.models import Customer
from engagement.models import Role, Segment, SegmentKind
from engagement.segments.services import (
    AudienceCounts,
    segment_audience_counts,
    segment_create,
    segment_delete,
    segment_members_remove,
    segment_members_upload,
    segment_queryset,
    segment_rules_queryset,
    segment_update,
)

from .base import WritesByRole
from .base import request_actor as _actor
from .base import request_workspace as _workspace
from .customers_api import CustomerOutSerializer, CustomerPagination

SEGMENT_EDITORS = (Role.ADMIN, Role.MARKETER)


class CanEditSegments(WritesByRole):
    """Reads (and counting an unsaved tree) for everyone in the workspace; writes for API keys and the
    workspace's admins and marketers."""

    message = "changing segments is for admins and marketers"
    roles = SEGMENT_EDITORS
    read_actions = frozenset({"preview_count"})


# ---------------------------------------------------------------- serializers


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "rules",
            "static_tag",
            "created_by_id",
            "updated_by_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SegmentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(
        choices=SegmentKind.choices, default=SegmentKind.DYNAMIC, help_text="Fixed at creation."
    )
    rules = serializers.JSONField(
        required=False,
        help_text='The rule tree (dynamic segments), e.g. {"type": "and", "rules": [{"type": "tag", '
        '"value": "vip"}]}; see engagement/segments/rules.py for every condition.',
    )
    static_tag = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Static segments: members by tag."
    )


class PreviewSerializer(serializers.Serializer):
    rules = serializers.JSONField(help_text="An unsaved rule tree.")
    purpose = serializers.ChoiceField(choices=SendPurpose.choices, default=SendPurpose.MARKETING)


class AudienceCountsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    purpose = serializers.CharField()
    reachable = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Channel kind → members with an address of that kind whom consent lets the purpose reach.",
    )


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="CSV with email/phone/external_id/webchat_id.")
    csv = serializers.CharField(required=False, help_text="Or the CSV text.")
    create_missing = serializers.BooleanField(default=True)


class RemoveMembersSerializer(serializers.Serializer):
    customer_ids = serializers.ListField(child=serializers.IntegerField(), max_length=10_000)


def _counts(counts: AudienceCounts) -> dict[str, Any]:
    return {"count": counts.count, "purpose": counts.purpose, "reachable": counts.reachable}


PURPOSE = OpenApiParameter(
    "purpose", str, enum=list(SendPurpose.values), description="For the reachable counts (default marketing)"
)


# ---------------------------------------------------------------- views


class SegmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Segments: a rule tree (dynamic) or a list (static) over the workspace's customers. Invalid rules
    answer 400 with the path of the bad node (``$.rules[1].rule``) in ``detail`` and ``field``."""

    extra_query_params = ("purpose", "page_size")

    serializer_class = SegmentSerializer
    pagination_class = None
    permission_classes = [*viewsets.GenericViewSet.permission_classes, CanEditSegments]

    def get_queryset(self) -> QuerySet[Segment]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request workspace
            return Segment.objects.none()
        return Segment.objects.filter(workspace=_workspace(self.request)).order_by("name", "id")

    @extend_schema(request=SegmentWriteSerializer, responses={201: SegmentSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = SegmentWriteSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        segment = segment_create(
            workspace=_workspace(request),
            name=d["name"],
            kind=d["kind"],
            rules=d.get("rules"),
            description=d.get("description", ""),
            static_tag=d.get("static_tag", ""),
            actor=_actor(request),
        )
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SegmentWriteSerializer, responses=SegmentSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        segment = self.get_object()
        ser = SegmentWriteSerializer(data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        if "kind" in d and d["kind"] != segment.kind:
            raise ValidationError({"kind": ["the kind of a segment cannot change"]})
        segment = segment_update(
            segment=segment,
            name=d.get("name"),
            description=d.get("description"),
            rules=d.get("rules"),
            static_tag=d.get("static_tag"),
            actor=_actor(request),
        )
        return Response(SegmentSerializer(segment).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        segment_delete(segment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[PURPOSE], responses=AudienceCountsSerializer)
    @action(detail=True, methods=["get"])
    def count(self, request: Request, pk: str | None = None) -> Response:
        """The members now, and how many are reachable on each channel for ``purpose``."""
        segment = self.get_object()
        purpose = request.query_params.get("purpose", SendPurpose.MARKETING)
        counts = segment_audience_counts(
            workspace=segment.workspace, queryset=segment_queryset(segment=segment), purpose=purpose
        )
        return Response(_counts(counts))

    @extend_schema(request=PreviewSerializer, responses=AudienceCountsSerializer)
    @action(detail=False, methods=["post"], url_path="preview-count")
    def preview_count(self, request: Request) -> Response:
        """Count an unsaved rule tree (the builder's live count); nothing is stored."""
        ser = PreviewSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        workspace = _workspace(request)
        members = segment_rules_queryset(workspace=workspace, rules=ser.validated_data["rules"])
        counts = segment_audience_counts(
            workspace=workspace, queryset=members, purpose=ser.validated_data["purpose"]
        )
        return Response(_counts(counts))

    @extend_schema(responses=CustomerOutSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=CustomerPagination)
    def members(self, request: Request, pk: str | None = None) -> Response:
        """The members now, newest customers first (cursor pagination)."""
        members: QuerySet[Customer] = segment_queryset(segment=self.get_object()).prefetch_related(
            "identities"
        )
        page = self.paginate_queryset(members)
        return self.get_paginated_response(CustomerOutSerializer(page, many=True).data)

    @extend_schema(request=UploadSerializer)
    @action(
        detail=True,
        methods=["post"],
        url_path="members/upload",
        parser_classes=[MultiPartParser, FormParser, JSONParser],
    )
    def members_upload(self, request: Request, pk: str | None = None) -> Response:
        """Static segments: add the customers a CSV names (multipart ``file`` or JSON ``csv``)."""
        segment = self.get_object()
        ser = UploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        upload = ser.validated_data.get("file")
        if upload is not None:
            try:
                source = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ValidationError({"file": ["the file must be UTF-8 CSV"]}) from exc
        else:
            source = ser.validated_data.get("csv", "")
        if not source.strip():
            raise ValidationError({"file": ["send a CSV file (multipart 'file') or 'csv' text"]})
        result = segment_members_upload(
            segment=segment,
            source=source,
            create_missing=ser.validated_data["create_missing"],
            actor=_actor(request),
        )
        return Response(result.as_dict())

    @extend_schema(request=RemoveMembersSerializer)
    @action(detail=True, methods=["post"], url_path="members/remove")
    def members_remove(self, request: Request, pk: str | None = None) -> Response:
        """Static segments: take customers off the list."""
        ser = RemoveMembersSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        ids = ser.validated_data["customer_ids"]
        removed = segment_members_remove(segment=self.get_object(), customer_ids=ids)
        return Response({"removed": removed})
