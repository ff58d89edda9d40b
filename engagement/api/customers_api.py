"""REST API for the single customer view. Thin: every queryset is scoped to the request's workspace and
every write goes through a ``customers`` service.

A merged-away customer id still answers: ``GET`` gets ``301`` with ``Location`` on the survivor's URL,
other methods ``410``; both bodies carry ``merged_into``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet, prefetch_related_objects
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from customers.consent import consent_history, consent_record, consent_summary
from customers.duplicates import (
    merge_suggestion_accept,
    merge_suggestion_dismiss,
    merge_suggestion_list,
    merge_suggestions_find,
)
from customers.identifiers import Identifier
from customers.imports import customer_import_start
from customers.lookup import CustomerNotFound, customer_resolve_current
from customers.merging import (
    customer_merge,
    customer_merge_preview,
    customer_unmerge,
    merge_list_for_customer,
)
from customers.models import (
    AttributeDefinition,
    AttributeType,
    ConsentChannel,
    ConsentEvent,
    ConsentPurpose,
    ConsentSource,
    ConsentStatus,
    Customer,
    CustomerImport,
    CustomerMerge,
    Identity,
    IdentityKind,
    MergeSource,
    MergeSuggestion,
    PreferredChannel,
)
from customers.privacy import customer_erase, customer_export
from customers.profile import (
    attribute_define,
    customer_timezone,
    customer_update,
    identity_add,
    identity_remove,
)
from customers.resolution import customer_resolve_identifiers
from engagement.models import Interaction, Workspace

from .base import ContractMixin, ContractViewSet
from .base import request_workspace as _workspace
from .exceptions import problem_response
from .parsers import JSONParser
from .serializers import InteractionSerializer


def _data(request: Request) -> dict[str, Any]:
    return request.data if isinstance(request.data, dict) else {}


def _actor(request: Request) -> Any:
    return request.user if request.user.is_authenticated else None


class CustomerMoved(APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "this customer was merged into another one"

    def __init__(self, survivor_id: int) -> None:
        super().__init__(str(self.default_detail))
        self.survivor_id = survivor_id


# ---------------------------------------------------------------- serializers


class IdentityOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = [
            "id",
            "kind",
            "value",
            "verified",
            "first_channel",
            "first_seen_at",
            "last_channel",
            "last_seen_at",
        ]
        read_only_fields = fields


class IdentifierInSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField(max_length=320)
    verified = serializers.BooleanField(default=False)


class CustomerOutSerializer(serializers.ModelSerializer):
    identities = IdentityOutSerializer(many=True, read_only=True)
    effective_timezone = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "display_name",
            "identities",
            "attributes",
            "tags",
            "timezone",
            "effective_timezone",
            "preferred_channel",
            "erased_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_effective_timezone(self, obj: Customer) -> dict[str, str | None]:
        zone, source = customer_timezone(customer=obj, identities=obj.identities.all())
        return {"zone": zone, "source": source}


class CustomerWriteSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    attributes = serializers.DictField(required=False, help_text="Defined attributes; null removes one.")
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    preferred_channel = serializers.ChoiceField(choices=PreferredChannel.choices, required=False)


class CustomerUpsertSerializer(CustomerWriteSerializer):
    identifiers = serializers.ListField(child=IdentifierInSerializer(), min_length=1)


class MergeRequestSerializer(serializers.Serializer):
    other_id = serializers.IntegerField(help_text="The customer merged into this one (this one survives).")
    preview = serializers.BooleanField(default=False, help_text="Only say what would move.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class MergeRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerMerge
        fields = [
            "id",
            "survivor_id",
            "merged_id",
            "source",
            "linking_kind",
            "linking_value",
            "event_ref",
            "evidence",
            "moved",
            "actor_id",
            "created_at",
            "undone_at",
            "undone_by_id",
            "undo_moved",
        ]
        read_only_fields = fields


class SuggestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MergeSuggestion
        fields = [
            "id",
            "customer_a_id",
            "customer_b_id",
            "reason",
            "score",
            "evidence",
            "status",
            "created_at",
        ]
        read_only_fields = fields


class ConsentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsentEvent
        fields = [
            "id",
            "channel",
            "purpose",
            "status",
            "source",
            "address",
            "evidence",
            "actor_id",
            "occurred_at",
            "recorded_at",
        ]
        read_only_fields = fields

    recorded_at = serializers.DateTimeField(source="created_at", read_only=True)


class ConsentWriteSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    purpose = serializers.ChoiceField(
        choices=[("", "Every purpose"), *ConsentPurpose.choices], default="", allow_blank=True
    )
    status = serializers.ChoiceField(choices=ConsentStatus.choices)
    evidence = serializers.DictField(required=False)
    occurred_at = serializers.DateTimeField(
        required=False,
        help_text="When the customer gave or withdrew consent, as evidence. The ledger is ordered by when "
        "it was recorded, never by this; a time more than 5 minutes in the future is refused.",
    )


class ImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerImport
        fields = [
            "id",
            "filename",
            "status",
            "total_rows",
            "processed_rows",
            "created_count",
            "updated_count",
            "failed_count",
            "errors",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class AttributeDefinitionSerializer(serializers.ModelSerializer):
    type = serializers.ChoiceField(choices=AttributeType.choices)

    class Meta:
        model = AttributeDefinition
        fields = ["id", "key", "label", "type"]


class CustomerUpsertOutSerializer(CustomerOutSerializer):
    created = serializers.BooleanField(help_text="Whether a new customer was created.")
    merges = serializers.ListField(child=serializers.IntegerField(), help_text="Merge record ids made.")
    suggestions = serializers.ListField(
        child=serializers.IntegerField(), help_text="Merge suggestion ids raised."
    )

    class Meta(CustomerOutSerializer.Meta):
        fields = [*CustomerOutSerializer.Meta.fields, "created", "merges", "suggestions"]
        read_only_fields = fields


class ConsentOutSerializer(serializers.Serializer):
    state = serializers.DictField(
        child=serializers.DictField(child=serializers.CharField(allow_null=True)),
        help_text="{channel: {purpose: status or null}}; purpose '' is every purpose.",
    )
    history = ConsentEventSerializer(many=True)


class EraseInSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200)


class EraseOutSerializer(serializers.Serializer):
    erasure_id = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows erased, per kind.")


class RefreshOutSerializer(serializers.Serializer):
    touched = serializers.IntegerField(help_text="Pending suggestions recorded or refreshed.")


class ImportInSerializer(serializers.Serializer):
    csv = serializers.CharField(help_text="The CSV text (or send multipart 'file').", max_length=10_000_000)


# ---------------------------------------------------------------- customers


class CustomerPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class TimelinePagination(CustomerPagination):
    pass


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time, converted to UTC here: PostgreSQL refuses offsets past ±15:59 and a time whose
    UTC form leaves years 1-9999 cannot be compared with anything (400, not a database error)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise DjangoValidationError("the time is out of range", code="invalid") from exc


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


_PLUS_AS_SPACE = re.compile(r"^ \d[\d\s]*$")


class CustomerFilter(django_filters.FilterSet):
    identity = django_filters.CharFilter(
        method="filter_identity",
        label="Any identity value (phone, email…). Encode a phone's + as %2B; an unencoded + arrives as a "
        "space, and a value of a space then digits is read as +digits.",
    )
    tag = django_filters.CharFilter(method="filter_tag", label="Has this tag")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Customer
        fields = ["identity", "tag", "created_after"]

    def filter_identity(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        # "?identity=+1500…" unencoded: the + arrives as a space (which the form field strips).
        raw = str(self.data.get("identity", value))
        if _PLUS_AS_SPACE.match(raw):
            value = "+" + raw.strip()
        return queryset.filter(identities__value__iexact=value)

    def filter_tag(self, queryset: QuerySet[Customer], name: str, value: str) -> QuerySet[Customer]:
        return queryset.filter(tags__contains=[value])


def _profile_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: data[k]
        for k in ("display_name", "attributes", "tags", "timezone", "preferred_channel")
        if k in data
    }


class CustomerViewSet(
    ContractMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Customers. ``POST`` is an upsert by identifiers (found, linked, merged or created through the one
    resolution service); ``DELETE`` erases the customer's personal data (GDPR), as ``erase`` does."""

    serializer_class = CustomerOutSerializer
    filterset_class = CustomerFilter
    scope_area = "customers"
    scope_areas = {"consent": "consent"}
    pagination_class = CustomerPagination

    def get_queryset(self) -> QuerySet[Customer]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no workspace
            return Customer.objects.none()
        qs = Customer.objects.filter(workspace=_workspace(self.request)).prefetch_related("identities")
        if self.action == "list":
            qs = qs.filter(merged_into__isnull=True).distinct()
        return qs

    def get_object(self) -> Customer:
        workspace = _workspace(self.request)
        try:
            pk = int(self.kwargs["pk"])
        except (TypeError, ValueError) as exc:
            raise NotFound("no such customer") from exc
        try:
            customer = customer_resolve_current(workspace_id=workspace.pk, customer_id=pk)
        except CustomerNotFound as exc:
            raise NotFound("no such customer in this workspace") from exc
        if customer.pk != pk:
            raise CustomerMoved(customer.pk)
        prefetch_related_objects([customer], "identities")
        return customer

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, CustomerMoved):
            moved = self.request.method in ("GET", "HEAD")
            code = status.HTTP_301_MOVED_PERMANENTLY if moved else status.HTTP_410_GONE
            headers = {}
            if moved:
                old = f"/customers/{self.kwargs.get('pk')}/"
                path = self.request.get_full_path().replace(old, f"/customers/{exc.survivor_id}/", 1)
                headers["Location"] = path
            return problem_response(
                status=code,
                code="customer_merged",
                title="Customer merged",
                detail="this customer was merged into another one",
                extra={"merged_into": exc.survivor_id},
                headers=headers,
            )
        return super().handle_exception(exc)

    @extend_schema(
        request=CustomerUpsertSerializer,
        responses={200: CustomerUpsertOutSerializer, 201: CustomerUpsertOutSerializer},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = CustomerUpsertSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        workspace = _workspace(request)
        # One transaction: a profile the service refuses must not leave the resolved customer behind.
        with transaction.atomic():
            return self._upsert(request, workspace, data)

    def _upsert(self, request: Request, workspace: Workspace, data: dict[str, Any]) -> Response:
        resolution = customer_resolve_identifiers(
            workspace=workspace,
            identifiers=[Identifier(i["kind"], i["value"], i["verified"]) for i in data["identifiers"]],
            display_name=data.get("display_name", ""),
            source=MergeSource.API,
            event_ref="api:upsert",
            actor=_actor(request),
        )
        profile = _profile_kwargs(data)
        if resolution.created:
            profile.pop("display_name", None)  # already set by the resolution
        customer = resolution.customer
        if profile:
            customer = customer_update(workspace=workspace, customer=customer, **profile)
        out = CustomerOutSerializer(Customer.objects.prefetch_related("identities").get(pk=customer.pk)).data
        body = {
            **out,
            "created": resolution.created,
            "merges": [m.pk for m in resolution.merges],
            "suggestions": [s.pk for s in resolution.suggestions],
        }
        return Response(body, status=status.HTTP_201_CREATED if resolution.created else status.HTTP_200_OK)

    @extend_schema(request=CustomerWriteSerializer, responses=CustomerOutSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        ser = CustomerWriteSerializer(data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        customer = customer_update(
            workspace=_workspace(request), customer=customer, **_profile_kwargs(ser.validated_data)
        )
        return Response(
            CustomerOutSerializer(Customer.objects.prefetch_related("identities").get(pk=customer.pk)).data
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        customer_erase(workspace=_workspace(request), customer=customer, actor=_actor(request), via="api")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=InteractionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=TimelinePagination, filterset_class=None)
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        customer = self.get_object()
        qs = Interaction.objects.filter(workspace=_workspace(request), customer=customer).select_related(
            "channel"
        )
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(InteractionSerializer(page, many=True).data)

    @extend_schema(methods=["GET"], responses=IdentityOutSerializer(many=True))
    @extend_schema(methods=["POST"], request=IdentifierInSerializer, responses={201: IdentityOutSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None, filterset_class=None)
    def identities(self, request: Request, pk: str | None = None) -> Response:
        customer = self.get_object()
        workspace = _workspace(request)
        if request.method == "POST":
            ser = IdentifierInSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            d = ser.validated_data
            identity = identity_add(
                workspace=workspace,
                customer=customer,
                identifier=Identifier(d["kind"], d["value"], d["verified"]),
            )
            return Response(IdentityOutSerializer(identity).data, status=status.HTTP_201_CREATED)
        identities = Identity.objects.filter(workspace=workspace, customer=customer).order_by("kind", "value")
        return Response(IdentityOutSerializer(identities, many=True).data)

    @extend_schema(responses={204: None})
    @action(
        detail=True, methods=["delete"], url_path=r"identities/(?P<identity_id>\d+)", filterset_class=None
    )
    def identity_delete(self, request: Request, pk: str | None = None, identity_id: str = "") -> Response:
        customer = self.get_object()
        if not identity_remove(
            workspace=_workspace(request), customer=customer, identity_id=int(identity_id)
        ):
            raise NotFound("no such identity on this customer")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=MergeRequestSerializer,
        responses={201: MergeRecordSerializer, 200: OpenApiResponse(OpenApiTypes.OBJECT, "The preview")},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def merge(self, request: Request, pk: str | None = None) -> Response:
        survivor = self.get_object()
        ser = MergeRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        workspace = _workspace(request)
        try:
            # An id merged away since names the customer it lives on in.
            other = customer_resolve_current(
                workspace_id=workspace.pk, customer_id=ser.validated_data["other_id"]
            )
        except CustomerNotFound as exc:
            raise NotFound("no such customer to merge in this workspace") from exc
        if ser.validated_data["preview"]:
            return Response(
                customer_merge_preview(workspace=workspace, survivor=survivor, merged=other).as_dict()
            )
        record = customer_merge(
            workspace=workspace,
            survivor=survivor,
            merged=other,
            source=MergeSource.AGENT if request.user.is_authenticated else MergeSource.API,
            event_ref="api:merge",
            evidence={"note": ser.validated_data.get("note", "")},
            actor=_actor(request),
        )
        return Response(MergeRecordSerializer(record).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=MergeRecordSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def merges(self, request: Request, pk: str | None = None) -> Response:
        customer = self.get_object()
        records = merge_list_for_customer(workspace=_workspace(request), customer=customer)
        return Response(MergeRecordSerializer(records, many=True).data)

    @extend_schema(methods=["GET"], responses=ConsentOutSerializer)
    @extend_schema(methods=["POST"], request=ConsentWriteSerializer, responses={201: ConsentOutSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None, filterset_class=None)
    def consent(self, request: Request, pk: str | None = None) -> Response:
        customer = self.get_object()
        if request.method == "POST":
            ser = ConsentWriteSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            d = ser.validated_data
            consent_record(
                customer=customer,
                channel=d["channel"],
                purpose=d["purpose"],
                status=d["status"],
                source=ConsentSource.AGENT if request.user.is_authenticated else ConsentSource.API,
                evidence=d.get("evidence") or {},
                actor=_actor(request),
                occurred_at=d.get("occurred_at"),
            )
        body = {
            "state": consent_summary(customer=customer),
            "history": ConsentEventSerializer(consent_history(customer=customer), many=True).data,
        }
        return Response(
            body, status=status.HTTP_201_CREATED if request.method == "POST" else status.HTTP_200_OK
        )

    @extend_schema(responses=OpenApiResponse(OpenApiTypes.OBJECT, "Everything held about the customer"))
    @action(detail=True, methods=["get"], filterset_class=None)
    def export(self, request: Request, pk: str | None = None) -> Response:
        customer = self.get_object()
        return Response(customer_export(workspace=_workspace(request), customer=customer))

    @extend_schema(request=EraseInSerializer, responses=EraseOutSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def erase(self, request: Request, pk: str | None = None) -> Response:
        customer = self.get_object()
        audit = customer_erase(
            workspace=_workspace(request),
            customer=customer,
            actor=_actor(request),
            via="api",
            reason=str(_data(request).get("reason", ""))[:200],
        )
        return Response({"erasure_id": audit.pk, "counts": audit.counts})


# ---------------------------------------------------------------- merges, suggestions, imports, attributes


class CustomerMergeViewSet(mixins.RetrieveModelMixin, ContractViewSet):
    scope_area = "customers"

    serializer_class = MergeRecordSerializer

    def get_queryset(self) -> QuerySet[CustomerMerge]:
        if getattr(self, "swagger_fake_view", False):
            return CustomerMerge.objects.none()
        return CustomerMerge.objects.filter(workspace=_workspace(self.request))

    @extend_schema(request=None, responses=MergeRecordSerializer)
    @action(detail=True, methods=["post"])
    def undo(self, request: Request, pk: str | None = None) -> Response:
        record = self.get_object()
        record = customer_unmerge(workspace=_workspace(request), merge=record, actor=_actor(request))
        return Response(MergeRecordSerializer(record).data)


class MergeSuggestionViewSet(mixins.ListModelMixin, ContractViewSet):
    scope_area = "customers"
    serializer_class = SuggestionSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[MergeSuggestion]:
        if getattr(self, "swagger_fake_view", False):
            return MergeSuggestion.objects.none()
        return MergeSuggestion.objects.filter(workspace=_workspace(self.request))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(
            SuggestionSerializer(merge_suggestion_list(workspace=_workspace(request)), many=True).data
        )

    @extend_schema(request=None, responses=RefreshOutSerializer)
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        return Response({"touched": merge_suggestions_find(workspace=_workspace(request))})

    @extend_schema(request=None, responses=MergeRecordSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        record = merge_suggestion_accept(
            workspace=_workspace(request), suggestion=self.get_object(), actor=_actor(request)
        )
        return Response(MergeRecordSerializer(record).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=SuggestionSerializer)
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str | None = None) -> Response:
        suggestion = merge_suggestion_dismiss(
            workspace=_workspace(request), suggestion=self.get_object(), actor=_actor(request)
        )
        return Response(SuggestionSerializer(suggestion).data)


class CustomerImportViewSet(mixins.RetrieveModelMixin, mixins.CreateModelMixin, ContractViewSet):
    """``POST`` a CSV (multipart ``file``, or JSON ``{"csv": "..."}``); poll ``GET`` for progress and
    the per-row error report. Columns: see ``customers/imports.py``."""

    serializer_class = ImportSerializer
    scope_area = "imports"
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self) -> QuerySet[CustomerImport]:
        if getattr(self, "swagger_fake_view", False):
            return CustomerImport.objects.none()
        return CustomerImport.objects.filter(workspace=_workspace(self.request))

    @extend_schema(request=ImportInSerializer, responses={202: ImportSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        upload = request.FILES.get("file")
        if upload is not None:
            try:
                source, filename = upload.read().decode("utf-8-sig"), upload.name or ""
            except UnicodeDecodeError as exc:
                raise ValidationError({"file": ["the file must be UTF-8 CSV"]}) from exc
        else:
            source, filename = str(_data(request).get("csv", "")), ""
        if not source.strip():
            raise ValidationError({"file": ["send a CSV file (multipart 'file') or 'csv' text"]})
        imp = customer_import_start(
            workspace=_workspace(request), source=source, filename=filename, actor=_actor(request)
        )
        return Response(ImportSerializer(imp).data, status=status.HTTP_202_ACCEPTED)


class AttributeDefinitionViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, ContractViewSet):
    scope_area = "customers"
    serializer_class = AttributeDefinitionSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[AttributeDefinition]:
        if getattr(self, "swagger_fake_view", False):
            return AttributeDefinition.objects.none()
        return AttributeDefinition.objects.filter(workspace=_workspace(self.request)).order_by("key")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = AttributeDefinitionSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        definition = attribute_define(workspace=_workspace(request), **ser.validated_data)
        return Response(AttributeDefinitionSerializer(definition).data, status=status.HTTP_201_CREATED)
