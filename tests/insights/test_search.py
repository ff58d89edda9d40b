"""The search box: customers by fuzzy name or any identity (pg_trgm), messages by full-text search."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from engagement.models import Channel, Interaction, Workspace
from engagement.services.search import (
    SearchQueryInvalid,
    customer_search,
    interaction_search,
    tsquery_from_text,
    workspace_search,
)
from engagement.services.tenancy import api_key_create
from tests import factories

from .conftest import inbound


@pytest.mark.django_db
def test_customer_found_by_misspelt_name_and_exact_identity_first(workspace: Workspace) -> None:
    grace = factories.customer_create(workspace, ("email", "grace@navy.mil"), name="Grace Hopper")
    factories.customer_create(workspace, ("phone", "+14155550123"), name="Alan Turing")
    other = factories.customer_create(factories.workspace_create(), name="Grace Hopper")

    hits = customer_search(workspace=workspace, query="grce hoper")
    assert [h.customer.pk for h in hits] == [grace.pk]
    assert other.pk not in [h.customer.pk for h in hits]
    assert [i.value for i in hits[0].identities] == ["grace@navy.mil"]

    # Part of a name, any case.
    assert [h.customer.pk for h in customer_search(workspace=workspace, query="HOPP")] == [grace.pk]


@pytest.mark.django_db
def test_exact_identity_ranks_before_fuzzy_matches(workspace: Workspace) -> None:
    exact = factories.customer_create(workspace, ("phone", "+14155550123"), name="Ada")
    # Its name contains the digits: a substring match, but not the identity.
    fuzzy = factories.customer_create(workspace, ("phone", "+14155550124"), name="Ticket 4155550123")

    hits = customer_search(workspace=workspace, query="(415) 555-0123")
    assert hits[0].customer.pk == exact.pk
    assert hits[0].exact
    hits = customer_search(workspace=workspace, query="4155550123")
    assert [h.customer.pk for h in hits][:2] == [exact.pk, fuzzy.pk]
    # Email normalised before the exact match.
    mail = factories.customer_create(workspace, ("email", "Someone@Example.COM"))
    assert customer_search(workspace=workspace, query="SOMEONE@example.com")[0].customer.pk == mail.pk


@pytest.mark.django_db
def test_merged_away_customers_are_not_found(workspace: Workspace) -> None:
    from customers.merging import customer_merge
    from customers.models import MergeSource

    a = factories.customer_create(workspace, ("phone", "+14155550101"), name="Katherine Johnson")
    b = factories.customer_create(workspace, ("email", "kj@nasa.gov"), name="Katherine Johnson")
    customer_merge(workspace=workspace, survivor=a, merged=b, source=MergeSource.AGENT)
    hits = customer_search(workspace=workspace, query="katherine")
    assert [h.customer.pk for h in hits] == [a.pk]
    assert customer_search(workspace=workspace, query="kj@nasa.gov")[0].customer.pk == a.pk


@pytest.mark.django_db
def test_message_found_by_word_ranked_and_highlighted(workspace: Workspace, sms_channel: Channel) -> None:
    inbound(sms_channel, "+14155550101", "My parcel never arrived, can I get a refund?", name="Grace")
    inbound(sms_channel, "+14155550102", "Refund refund refund <b>now</b>", name="Alan")
    inbound(sms_channel, "+14155550103", "Thanks, all good", name="Ada")
    inbound(sms_channel, "+14155550104", "5 < 6 & 7 > 2 refund?", name="Joan")

    hits = interaction_search(workspace=workspace, query="refund")
    assert hits[0].interaction.body == "Refund refund refund <b>now</b>"
    assert {h.interaction.body for h in hits[1:]} == {
        "My parcel never arrived, can I get a refund?",
        "5 < 6 & 7 > 2 refund?",
    }
    assert "5 &lt; 6 &amp; 7 &gt; 2 <mark>refund</mark>?" in [h.headline for h in hits]
    assert "<mark>Refund</mark>" in hits[0].headline
    assert "<b>" not in hits[0].headline  # the message's own markup never becomes ours
    # Every word must match; the last also as a prefix (search as you type).
    assert [h.interaction.body for h in interaction_search(workspace=workspace, query="parcel refu")] == [
        "My parcel never arrived, can I get a refund?"
    ]
    assert interaction_search(workspace=workspace, query="parcel thanks") == []
    # Another workspace's messages never show.
    assert interaction_search(workspace=factories.workspace_create(), query="refund") == []


@pytest.mark.django_db
def test_query_text_never_reaches_the_tsquery_parser_as_operators(
    workspace: Workspace, sms_channel: Channel
) -> None:
    inbound(sms_channel, "+14155550101", "it's o'clock & done", name="Grace")
    assert tsquery_from_text("it's & !done | (x") == "'it' & 's' & 'done' & 'x':*"
    assert len(interaction_search(workspace=workspace, query="it's done")) == 1
    with pytest.raises(SearchQueryInvalid):
        interaction_search(workspace=workspace, query="&& !!")
    with pytest.raises(SearchQueryInvalid):
        workspace_search(workspace=workspace, query=" a ")


@pytest.mark.django_db
def test_message_search_uses_the_gin_index(workspace: Workspace, sms_channel: Channel) -> None:
    message = inbound(sms_channel, "+14155550101", "hello there", name="Grace")
    # The generated column follows the body, also when it changes (an erasure blanks it).
    Interaction.objects.filter(pk=message.pk).update(body="")
    assert interaction_search(workspace=workspace, query="hello") == []
    Interaction.objects.filter(pk=message.pk).update(body="hello again")
    assert [h.interaction.pk for h in interaction_search(workspace=workspace, query="again")] == [message.pk]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM engagement_interaction"
            " WHERE search_vector @@ to_tsquery('simple', 'hello')"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "interaction_search_gin" in plan


@pytest.mark.django_db
def test_console_search_page_and_dropdown(
    agent_client: Client, workspace: Workspace, sms_channel: Channel
) -> None:
    message = inbound(sms_channel, "+14155550101", "The invoice is wrong", name="Grace Hopper")
    page = agent_client.get("/search/", {"q": "grace"})
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-search-customer="{message.customer_id}"' in html

    with CaptureQueriesContext(connection) as ctx:
        dropdown = agent_client.get("/search/suggest/", {"q": "invoice"}, headers={"HX-Request": "true"})
    assert dropdown.status_code == 200
    html = dropdown.content.decode()
    assert f'data-search-message="{message.pk}"' in html
    assert "<mark>invoice</mark>" in html
    # session, user, memberships (2), customers (3: threshold, hits, identities), messages (at most 10:
    # planner settings, matches, rank, interactions), webhooks notice; whatever the number of hits.
    assert len(ctx.captured_queries) <= 20

    short = agent_client.get("/search/", {"q": "g"})
    assert short.status_code == 200
    assert "at least 2 characters" in short.content.decode()


def _api(workspace: Workspace, scopes: list[str] | None = None) -> APIClient:
    _, secret = api_key_create(workspace=workspace, name="tests", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.django_db
def test_api_search(workspace: Workspace, sms_channel: Channel) -> None:
    message = inbound(sms_channel, "+14155550101", "Where is my refund?", name="Grace Hopper")
    api = _api(workspace)

    body = api.get("/api/v1/search/", {"q": "grace hoper"}).json()
    assert [c["id"] for c in body["customers"]] == [message.customer_id]
    assert body["customers"][0]["identities"] == [{"kind": "phone", "value": "+14155550101"}]
    body = api.get("/api/v1/search/", {"q": "refund", "type": "messages"}).json()
    assert body["customers"] == []
    assert body["messages"][0]["id"] == message.pk
    assert body["messages"][0]["customer_id"] == message.customer_id
    assert body["messages"][0]["headline"] == "Where is my <mark>refund</mark>?"

    short = api.get("/api/v1/search/", {"q": "x"})
    assert short.status_code == 400
    assert short.json()["errors"][0]["field"] == "q"
    assert api.get("/api/v1/search/", {"q": "refund", "sort": "x"}).status_code == 400

    # Messages need the messages scope as well as customers.
    only_customers = _api(workspace, scopes=["customers:read"])
    assert only_customers.get("/api/v1/search/", {"q": "grace", "type": "customers"}).status_code == 200
    refused = only_customers.get("/api/v1/search/", {"q": "grace"})
    assert refused.status_code == 403
    assert refused.json()["required_scope"] == "messages:read"
