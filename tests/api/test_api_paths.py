"""The whole kind of "an API path written slightly differently": without its trailing slash (any method,
any endpoint) it is served as the route; a path that matches nothing is a 404 problem, DEBUG or not."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from engagement.models import ApiKey
from engagement.services.tenancy import api_key_create
from tests import factories

pytestmark = pytest.mark.django_db


def _client() -> tuple[Client, Any]:
    workspace = factories.workspace_create()
    _, secret = api_key_create(workspace=workspace, name="paths")
    assert ApiKey.objects.filter(workspace=workspace).exists()
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}"), workspace


@pytest.mark.parametrize("debug", [False, True])
def test_api_path_without_trailing_slash_is_served_for_every_method(debug: bool) -> None:
    client, _ = _client()
    with override_settings(DEBUG=debug):
        created = client.post(
            "/api/v1/events",
            data={"events": [{"name": "order_placed", "event_id": "e-1", "email": "ada@example.com"}]},
            content_type="application/json",
        )
        assert created.status_code in (200, 201, 202), created.content
        listed = client.get("/api/v1/customers")
        assert listed.status_code == 200, listed.content
        customer_id = listed.json()["results"][0]["id"]
        assert client.get(f"/api/v1/customers/{customer_id}").json()["id"] == customer_id
        patched = client.patch(
            f"/api/v1/customers/{customer_id}", data={"display_name": "Ada"}, content_type="application/json"
        )
        assert patched.status_code == 200, patched.content


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/nope", "/api/v2/customers/", "/api/"])
def test_api_path_matching_no_route_is_a_404_problem(debug: bool, path: str) -> None:
    client, _ = _client()
    with override_settings(DEBUG=debug):
        for method in ("get", "post", "delete"):
            response = getattr(client, method)(path)
            assert response.status_code == 404, (method, path)
            assert response["Content-Type"] == "application/problem+json"
            assert response.json()["code"] == "not_found"
