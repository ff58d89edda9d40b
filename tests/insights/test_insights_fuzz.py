"""No 5xx from search, reports, SLA/CSAT settings and the survey page, whatever the input (the same
strategies and checks as tests/test_no_500_fuzz.py)."""

from __future__ import annotations

from typing import Any

from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from engagement.models import ConversationResolution
from engagement.services.csat import csat_token
from tests.test_no_500_fuzz import FUZZ, answered, api, console, form_text, snapshot, world

__all__ = ["api", "console", "world"]


@FUZZ
@given(data=st.data())
def test_search_and_reports_reads(console: Client, api: APIClient, world: dict[str, Any], data: Any) -> None:
    value = data.draw(form_text)
    key = data.draw(st.sampled_from(["start", "end", "interval", "channel", "assignee", "zone", "x"]))
    reads = [
        (console, "/search/", {"q": value}),
        (console, "/search/suggest/", {"q": value}),
        (console, "/reports/", {key: value}),
        (console, "/reports/volume.csv", {key: value}),
        (console, f"/reports/{data.draw(st.sampled_from(['csat', 'nope', 'agent_load']))}.csv", {}),
        (
            api,
            "/api/v1/search/",
            {"q": value, "type": data.draw(st.sampled_from(["all", "messages", value]))},
        ),
        (api, "/api/v1/search/", {"q": value, "limit": data.draw(form_text)}),
        (api, "/api/v1/reports/first_response/", {key: value}),
        (api, "/api/v1/reports/resolution/", {"start": value, "end": data.draw(form_text)}),
    ]
    for client, path, query in reads:
        answered(client.get(path, query), snapshot())


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_sla_and_csat_forms(console: Client, world: dict[str, Any], data: Any) -> None:
    fields = {
        k: data.draw(form_text)
        for k in data.draw(
            st.lists(
                st.sampled_from(
                    [
                        "name",
                        "first_response_minutes",
                        "next_response_minutes",
                        "resolution_minutes",
                        "position",
                        "channel_kinds",
                        "open_1",
                        "close_1",
                        "question",
                        "reply_window_hours",
                        "enabled",
                    ]
                ),
                max_size=5,
            )
        )
    }
    fields["form"] = data.draw(st.sampled_from(["policy", "hours", "csat", "x"]))
    answered(console.post("/settings/sla/", fields), snapshot())
    answered(
        console.post(f"/settings/sla/{data.draw(st.sampled_from(['1', '999999']))}/", fields), snapshot()
    )


@settings(FUZZ, max_examples=10)
@given(data=st.data())
def test_survey_page(world: dict[str, Any], data: Any) -> None:
    conversation = world["conversation"]
    resolution = ConversationResolution.objects.first() or ConversationResolution.objects.create(
        workspace_id=conversation.workspace_id,
        conversation=conversation,
        customer_id=conversation.customer_id,
        channel_id=conversation.channel_id,
        opened_at=conversation.created_at,
        resolved_at=conversation.created_at,
    )
    token = data.draw(st.sampled_from([csat_token(resolution=resolution), "x", "a" * 300]))
    client = Client()
    answered(client.get(f"/csat/{token}/", {"score": data.draw(form_text)}), snapshot())
    answered(
        client.post(f"/csat/{token}/", {"score": data.draw(form_text), "comment": data.draw(form_text)}),
        snapshot(),
    )
