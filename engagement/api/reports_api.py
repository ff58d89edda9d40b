"""``GET /api/v1/reports/{name}/``: the console's reports as JSON (scope ``reports:read``). Thin over
``engagement.reports.selectors``; names: volume, first_response, resolution, agent_load, team_load, csat."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engagement.models import Workspace
from engagement.models.channels import ChannelKind
from engagement.reports.selectors import INTERVALS, REPORTS, report_filters_build, report_get

from .base import ContractAPIView


class ReportQuerySerializer(serializers.Serializer):
    start = serializers.DateField(
        required=False, help_text="First day (inclusive); default 29 days before end."
    )
    end = serializers.DateField(required=False, help_text="Last day (inclusive); default today.")
    interval = serializers.ChoiceField(
        choices=[(i, i) for i in INTERVALS], default="day", help_text="Bucket size."
    )
    channel = serializers.MultipleChoiceField(
        choices=ChannelKind.choices, required=False, help_text="Only these channel kinds (repeatable)."
    )
    assignee = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        help_text="Only conversations assigned to these member ids (repeatable).",
    )
    team = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        help_text="Only conversations assigned to members of these teams (repeatable); with assignee, "
        "both narrow. team_load: only these teams.",
    )
    zone = serializers.CharField(
        required=False, default="UTC", max_length=64, help_text="IANA zone of the days."
    )


class ReportSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()))
    summary = serializers.DictField(child=serializers.JSONField())
    interval = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    zone = serializers.CharField()


class ReportView(ContractAPIView):
    """One report over a date range, bucketed per day or week: columns and rows (seconds for times)."""

    scope_area = "reports"
    extra_query_params = ("start", "end", "interval", "channel", "assignee", "team", "zone")
    pagination_class = None

    @extend_schema(
        parameters=[
            ReportQuerySerializer,
            OpenApiParameter(
                "name", str, OpenApiParameter.PATH, enum=list(REPORTS), description="The report."
            ),
        ],
        responses=ReportSerializer,
        operation_id="reports_retrieve",
    )
    def get(self, request: Request, name: str) -> Response:
        params = ReportQuerySerializer(
            data={
                **{k: v for k, v in request.query_params.items() if k not in ("channel", "assignee", "team")},
                "channel": request.query_params.getlist("channel"),
                "assignee": request.query_params.getlist("assignee"),
                "team": request.query_params.getlist("team"),
            }
        )
        params.is_valid(raise_exception=True)
        data = params.validated_data
        workspace: Workspace = request.workspace  # type: ignore[attr-defined]
        filters = report_filters_build(
            start=data.get("start"),
            end=data.get("end"),
            interval=data["interval"],
            channel_kinds=sorted(data.get("channel") or []),
            assignee_ids=data.get("assignee") or [],
            zone=data["zone"],
            team_ids=data.get("team") or [],
            workspace=workspace,
        )
        report = report_get(workspace=workspace, name=name, filters=filters)
        body = {
            **report.as_dict(),
            "interval": filters.interval,
            "start": filters.start,
            "end": filters.end,
            "zone": filters.zone,
        }
        return Response(ReportSerializer(body).data)
