"""The customers page (search by name or any identity, filters, paging), creating a customer, and
editing the profile (attributes, tags, time zone, preferred channel), with and without htmx."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from customers.models import Customer, Identity
from customers.profile import attribute_define
from tests import factories


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-customer-id="(\d+)"', html)]


@pytest.fixture
def people(workspace: Any) -> dict[str, Customer]:
    return {
        "grace": factories.customer_create(
            workspace,
            ("phone", "+14155550101"),
            ("email", "grace@navy.example"),
            name="Grace Hopper",
            tags=["vip"],
        ),
        "alan": factories.customer_create(workspace, ("email", "alan@example.com"), name="Alan Turing"),
        "nameless": factories.customer_create(workspace, ("phone", "+442071838750")),
    }


@pytest.mark.django_db
def test_search_by_name_and_any_identity_and_filters(
    agent_client: Client, people: dict[str, Customer]
) -> None:
    def ids(query: str) -> set[int]:
        resp = agent_client.get("/customers/" + query)
        assert resp.status_code == 200
        return set(_ids(resp.content.decode()))

    grace, alan, nameless = people["grace"].pk, people["alan"].pk, people["nameless"].pk
    assert ids("") == {grace, alan, nameless}
    assert ids("?q=hopper") == {grace}
    assert ids("?q=NAVY.example") == {grace}
    assert ids("?q=2071838750") == {nameless}  # digits of a phone number, without the +
    assert ids("?q=+44 20") == {nameless}
    assert ids("?has_email=1") == {grace, alan}
    assert ids("?has_phone=1") == {grace, nameless}
    assert ids("?tag=vip") == {grace}
    assert ids("?q=turing&has_phone=1") == set()
    page = agent_client.get("/customers/").content.decode()
    assert "+442071838750" in page  # a nameless customer is shown by an identity
    assert f'href="/customers/{grace}/"' in page


@pytest.mark.django_db
def test_htmx_search_returns_only_the_results(agent_client: Client, people: dict[str, Customer]) -> None:
    resp = agent_client.get("/customers/?q=alan", HTTP_HX_REQUEST="true")
    html = resp.content.decode()
    assert "<html" not in html
    assert _ids(html) == [people["alan"].pk]


@pytest.mark.django_db
def test_customers_page_pages_by_25_and_keeps_the_filters(agent_client: Client, workspace: Any) -> None:
    for i in range(27):
        factories.customer_create(workspace, ("email", f"p{i}@example.com"), name=f"Person {i}")
    first = agent_client.get("/customers/?q=person").content.decode()
    assert len(_ids(first)) == 25
    assert "?q=person&amp;page=2" in first
    second = agent_client.get("/customers/?q=person&page=2").content.decode()
    assert len(_ids(second)) == 2


@pytest.mark.django_db
def test_customers_page_query_count_does_not_grow_with_customers(
    agent_client: Client, workspace: Any
) -> None:
    factories.customer_create(workspace, ("email", "one@example.com"), name="One", tags=["a"])
    agent_client.get("/customers/")
    with CaptureQueriesContext(connection) as one:
        agent_client.get("/customers/?has_email=1")
    for i in range(20):
        factories.customer_create(
            workspace, ("email", f"c{i}@example.com"), ("phone", f"+1415558{i:04d}"), tags=[f"t{i}"]
        )
    with CaptureQueriesContext(connection) as many:
        html = agent_client.get("/customers/?has_email=1").content.decode()
    assert len(_ids(html)) == 21
    assert len(many.captured_queries) <= len(one.captured_queries)


@pytest.mark.django_db
def test_create_a_customer(agent_client: Client, workspace: Any) -> None:
    resp = agent_client.post(
        "/customers/new/",
        {"display_name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "+14155550123"},
    )
    ada = Customer.objects.get(display_name="Ada Lovelace")
    assert resp["Location"] == f"/customers/{ada.pk}/"
    assert sorted(Identity.objects.filter(customer=ada).values_list("value", flat=True)) == [
        "+14155550123",
        "ada@example.com",
    ]
    again = agent_client.post("/customers/new/", {"display_name": "Ada copy", "email": "ada@example.com"})
    assert f"belongs to customer {ada.pk}" in again.content.decode()
    assert not Customer.objects.filter(display_name="Ada copy").exists()  # nothing half-created
    empty = agent_client.post("/customers/new/", {})
    assert "Give at least a name" in empty.content.decode()


@pytest.mark.django_db
def test_edit_profile_with_htmx_and_without(
    agent_client: Client, workspace: Any, people: dict[str, Customer]
) -> None:
    attribute_define(workspace=workspace, key="plan", label="Plan", type="string")
    attribute_define(workspace=workspace, key="seats", label="Seats", type="number")
    grace = people["grace"]
    profile = agent_client.get(f"/customers/{grace.pk}/").content.decode()
    assert 'name="attr_plan"' in profile
    assert 'hx-post="/customers/' in profile

    resp = agent_client.post(
        f"/customers/{grace.pk}/edit/",
        {
            "display_name": "Grace B. Hopper",
            "tags": "vip, navy",
            "timezone": "America/New_York",
            "preferred_channel": "email",
            "attr_plan": "pro",
            "attr_seats": "12",
        },
        HTTP_HX_REQUEST="true",
    )
    panel = resp.content.decode()
    assert panel.startswith('<section class="card" id="profile-panel">')
    assert "Saved." in panel
    grace.refresh_from_db()
    assert grace.display_name == "Grace B. Hopper"
    assert grace.tags == ["vip", "navy"]
    assert grace.timezone == "America/New_York"
    assert grace.preferred_channel == "email"
    assert grace.attributes == {"plan": "pro", "seats": 12}

    bad = agent_client.post(
        f"/customers/{grace.pk}/edit/", {"attr_seats": "many", "tags": "ok"}, HTTP_HX_REQUEST="true"
    )
    assert "seats: &#x27;many&#x27; is not a number" in bad.content.decode()
    grace.refresh_from_db()
    assert grace.tags == ["vip", "navy"]  # nothing written

    plain = agent_client.post(f"/customers/{grace.pk}/edit/", {"tags": ""})
    assert plain["Location"] == f"/customers/{grace.pk}/"
    grace.refresh_from_db()
    assert grace.tags == []


@pytest.mark.django_db
def test_profile_timeline_is_formatted_like_the_thread(
    agent_client: Client, workspace: Any, sms_channel: Any
) -> None:
    from .conftest import inbound

    item = inbound(sms_channel, "+14155550101", "hello from the profile test")
    profile = agent_client.get(f"/customers/{item.customer_id}/").content.decode()
    thread = agent_client.get(f"/customers/{item.customer_id}/thread/").content.decode()
    pattern = re.compile(r'<li class="item inbound channel-sms" data-interaction-id="\d+">')
    assert pattern.search(profile)
    assert pattern.search(thread)
    assert f'href="/customers/{item.customer_id}/thread/"' in profile  # Message
    assert f'href="/customers/{item.customer_id}/"' in thread
