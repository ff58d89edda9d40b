"""``GET /api/v1/search/?q=``: the console's search box for integrators. Thin over
``engagement.services.search``. Customers need the ``customers:read`` scope, messages ``messages:read``
as well (``type`` narrows to one of them)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from engagement.models import ApiKey, Workspace
from engagement.services.search import MAX_LIMIT, QUERY_MAX_LENGTH, workspace_search

from .base import ContractAPIView
from .scopes import scopes_allow


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=QUERY_MAX_LENGTH, help_text="Words, a name, a phone number or an email."
    )
    type = serializers.ChoiceField(
        choices=[("all", "all"), ("customers", "customers"), ("messages", "messages")],
        default="all",
        help_text="What to search: customers, messages or both.",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=10, help_text="Hits of each kind."
    )


class SearchIdentitySerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()


class SearchCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    identities = SearchIdentitySerializer(many=True)
    exact = serializers.BooleanField(help_text="An identity equals the query (normalised).")
    score = serializers.FloatField(help_text="Higher is better: exact identity, substring, then similarity.")


class SearchMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    customer_id = serializers.IntegerField()
    conversation_id = serializers.IntegerField(allow_null=True)
    channel_id = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    direction = serializers.CharField()
    created_at = serializers.DateTimeField()
    rank = serializers.FloatField(help_text="ts_rank_cd of the message for the query.")
    headline = serializers.CharField(help_text="HTML: the message's text escaped, matched words in <mark>.")


class SearchResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    customers = SearchCustomerSerializer(many=True)
    messages = SearchMessageSerializer(many=True)


class SearchView(ContractAPIView):
    """Customers (fuzzy name, any identity; an exact identity first) and messages (full-text, ranked,
    highlighted) of the workspace, best first. Not paginated: the best ``limit`` hits of each kind."""

    scope_area = "customers"
    extra_query_params = ("q", "type", "limit")
    pagination_class = None

    @extend_schema(
        parameters=[SearchQuerySerializer],
        responses=SearchResultSerializer,
        operation_id="search",
    )
    def get(self, request: Request) -> Response:
        params = SearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        kind = params.validated_data["type"]
        want_messages = kind in ("all", "messages")
        if (
            want_messages
            and isinstance(request.auth, ApiKey)
            and not scopes_allow(granted=list(request.auth.scopes or []), required="messages:read")
        ):
            exc = PermissionDenied("this API key lacks the scope messages:read")
            exc.problem_code = "scope_missing"  # type: ignore[attr-defined]
            exc.problem_extra = {"required_scope": "messages:read"}  # type: ignore[attr-defined]
            raise exc
        workspace: Workspace = request.workspace  # type: ignore[attr-defined]
        results = workspace_search(
            workspace=workspace,
            query=params.validated_data["q"],
            customers=kind in ("all", "customers"),
            messages=want_messages,
            limit=params.validated_data["limit"],
        )
        body = {
            "query": results.query,
            "customers": [
                {
                    "id": hit.customer.pk,
                    "display_name": hit.customer.display_name,
                    "identities": [{"kind": i.kind, "value": i.value} for i in hit.identities],
                    "exact": hit.exact,
                    "score": hit.score,
                }
                for hit in results.customers
            ],
            "messages": [
                {
                    "id": hit.interaction.pk,
                    "customer_id": hit.interaction.customer_id,
                    "conversation_id": hit.interaction.conversation_id,
                    "channel_id": hit.interaction.channel_id,
                    "kind": hit.interaction.kind,
                    "direction": hit.interaction.direction,
                    "created_at": hit.interaction.created_at,
                    "rank": hit.rank,
                    "headline": str(hit.headline),
                }
                for hit in results.messages
            ],
        }
        return Response(SearchResultSerializer(body).data)
