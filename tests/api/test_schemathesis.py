"""schemathesis over the whole OpenAPI schema, against a live server (the test's own): no 5xx and no response
that contradicts the schema (status code, content type, headers, body), authenticated with a key of
every scope. Bounded: a few examples per operation, so it stays within a couple of minutes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engagement.services.tenancy import api_key_create
from tests import factories


def _load() -> Any:
    raw = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
    return schemathesis.openapi.from_dict(raw)


schema = _load()
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def full_key(transactional_db: None, settings: Any) -> str:
    settings.API_RATE_LIMIT_REQUESTS = 1_000_000
    workspace = factories.workspace_create()
    factories.channel_create(workspace, "sms")
    factories.customer_create(workspace, ("phone", "+14155550100"))
    _, secret = api_key_create(workspace=workspace, name="schemathesis")
    return secret


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: Any, full_key: str, live_server: Any) -> None:
    response = case.call(base_url=live_server.url, headers={"Authorization": f"Bearer {full_key}"})
    case.validate_response(response, checks=CHECKS)
