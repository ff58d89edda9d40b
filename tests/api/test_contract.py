"""The API contract (issue 14): problem details, unknown query parameters, Idempotency-Key, scopes,
workspace isolation over every endpoint, rate limits, channels/conversations/interactions, the schema."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Customer
from engagement.models import ApiKey, Conversation, IdempotencyRecord, Interaction
from engagement.scopes import ALL_SCOPES
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.api.problems import problem


def _client(secret: str, **extra) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def api(workspace):
    _, secret = api_key_create(workspace=workspace, name="full")
    return _client(secret)


# ---------------------------------------------------------------- problem details


@pytest.mark.django_db
def test_every_error_is_a_problem_document(api, workspace):
    body = problem(api.post("/api/v1/customers/", {"identifiers": []}, format="json"), 400)
    assert body["code"] == "validation_failed"
    assert body["errors"][0]["field"] == "identifiers"
    assert body["errors"][0]["pointer"] == "/identifiers"
    nested = problem(
        api.post("/api/v1/customers/", {"identifiers": [{"kind": "fax", "value": "1"}]}, format="json"), 400
    )
    assert nested["errors"][0]["pointer"] == "/identifiers/0/kind"
    assert nested["errors"][0]["code"] == "invalid_choice"
    assert problem(api.get("/api/v1/customers/999999999/"), 404)["code"] == "not_found"
    assert problem(api.delete("/api/v1/channels/"), 405)["code"] == "method_not_allowed"
    parse = problem(api.generic("POST", "/api/v1/customers/", "{nope", content_type="application/json"), 400)
    assert parse["code"] == "parse_error"
    assert problem(APIClient().get("/api/v1/customers/"), 401)["code"] == "not_authenticated"
    bad = _client("eng_abc_def")
    assert problem(bad.get("/api/v1/customers/"), 401)["code"] == "authentication_failed"


@pytest.mark.django_db
def test_a_domain_error_keeps_its_code_and_field(api, workspace):
    factories.customer_create(workspace, ("phone", "+14155550100"))
    resp = api.post(
        "/api/v1/customers/",
        {"identifiers": [{"kind": "phone", "value": "not a phone"}]},
        format="json",
    )
    body = problem(resp, 400)
    assert body["code"] == "identifier_invalid"
    assert "not a phone number" in body["detail"]


@pytest.mark.django_db
def test_a_merged_customer_answers_a_problem_with_merged_into(api, workspace):
    a = factories.customer_create(workspace, ("phone", "+14155550100"))
    b = factories.customer_create(workspace, ("phone", "+14155550101"))
    assert api.post(f"/api/v1/customers/{a.pk}/merge/", {"other_id": b.pk}, format="json").status_code == 201
    gone = problem(api.patch(f"/api/v1/customers/{b.pk}/", {"tags": ["x"]}, format="json"), 410)
    assert (gone["code"], gone["merged_into"]) == ("customer_merged", a.pk)


# ---------------------------------------------------------------- query parameters and filters


@pytest.mark.django_db
def test_unknown_query_parameters_are_a_400_that_names_them(api):
    body = problem(api.get("/api/v1/customers/", {"identiy": "+1", "tag": "vip", "zzz": "1"}), 400)
    assert sorted(e["field"] for e in body["errors"]) == ["identiy", "zzz"]
    assert {e["code"] for e in body["errors"]} == {"unknown_parameter"}
    assert api.get("/api/v1/customers/", {"tag": "vip", "page_size": 5}).status_code == 200
    problem(api.get("/api/v1/channels/1/", {"foo": "1"}), 400)


@pytest.mark.django_db
def test_identity_filter_reads_an_unencoded_plus_as_plus(api, workspace):
    customer = factories.customer_create(workspace, ("phone", "+15005550101"))
    # What curl sends for ?identity=+15005550101 without encoding: the + becomes a space.
    raw = api.get("/api/v1/customers/?identity=+15005550101").json()["results"]
    encoded = api.get("/api/v1/customers/?identity=%2B15005550101").json()["results"]
    assert [c["id"] for c in raw] == [c["id"] for c in encoded] == [customer.pk]


@pytest.mark.django_db
def test_channels_conversations_and_interactions(api, workspace, sms_channel):
    other = factories.channel_create(workspace, "email", is_active=False)
    listed = api.get("/api/v1/channels/").json()["results"]
    assert {c["id"] for c in listed} == {sms_channel.pk, other.pk}
    mine = api.get("/api/v1/channels/", {"kind": "sms", "active": "true"}).json()["results"]
    assert mine == [
        {
            "id": sms_channel.pk,
            "kind": "sms",
            "provider": sms_channel.provider,
            "name": sms_channel.name,
            "address": sms_channel.address,
            "active": True,
        }
    ]
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    conversation = Conversation.objects.create(
        workspace=workspace, customer=customer, channel=sms_channel, last_activity_at=timezone.now()
    )
    Interaction.objects.create(
        workspace=workspace,
        customer=customer,
        conversation=conversation,
        channel=sms_channel,
        direction="inbound",
        body="hi",
        status="received",
        status_changed_at=timezone.now(),
        created_at=timezone.now(),
    )
    convs = api.get("/api/v1/conversations/", {"status": "open", "customer": customer.pk}).json()["results"]
    assert [c["id"] for c in convs] == [conversation.pk]
    assert api.get("/api/v1/conversations/", {"status": "resolved"}).json()["results"] == []
    resolved = api.post(
        f"/api/v1/conversations/{conversation.pk}/status/", {"status": "resolved"}, format="json"
    )
    assert resolved.status_code == 200, resolved.content
    assert resolved.json()["status"] == "resolved"
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    problem(api.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "x"}, format="json"), 400)
    items = api.get("/api/v1/interactions/", {"conversation": conversation.pk}).json()["results"]
    assert [i["body"] for i in items] == ["hi"]
    assert items[0]["call_outcome"] == ""


# ---------------------------------------------------------------- Idempotency-Key


@pytest.mark.django_db
def test_idempotency_key_replays_the_first_response(api, workspace):
    payload = {"identifiers": [{"kind": "email", "value": "a@example.com"}], "display_name": "A"}
    first = api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(workspace=workspace).count() == 1
    # Without the key the same body is an ordinary upsert (200: found).
    assert api.post("/api/v1/customers/", payload, format="json").status_code == 200


@pytest.mark.django_db
def test_idempotency_key_with_another_body_is_a_422_that_says_so(api):
    payload: dict[str, Any] = {"identifiers": [{"kind": "email", "value": "a@example.com"}]}
    api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    payload["display_name"] = "changed"
    body = problem(api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k2"), 422)
    assert body["code"] == "idempotency_key_reused"
    assert "different request" in body["detail"]


@pytest.mark.django_db
def test_idempotency_errors_are_kept_too_and_keys_are_per_workspace(api, workspace):
    bad: dict[str, Any] = {"identifiers": []}
    first = api.post("/api/v1/customers/", bad, format="json", HTTP_IDEMPOTENCY_KEY="k3")
    again = api.post("/api/v1/customers/", bad, format="json", HTTP_IDEMPOTENCY_KEY="k3")
    assert first.status_code == again.status_code == 400
    assert again["Content-Type"].startswith("application/problem+json")
    other = factories.workspace_create()
    _, secret = api_key_create(workspace=other, name="o")
    payload = {"identifiers": [{"kind": "email", "value": "b@example.com"}]}
    assert (
        _client(secret)
        .post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k3")
        .status_code
        == 201
    )


@pytest.mark.django_db
def test_idempotency_keys_expire_after_24_hours(api, workspace):
    payload: dict[str, Any] = {"identifiers": [{"kind": "email", "value": "c@example.com"}]}
    api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k4")
    IdempotencyRecord.objects.filter(key="k4").update(created_at=timezone.now() - timedelta(hours=25))
    payload["display_name"] = "new body, old key"
    resp = api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k4")
    assert resp.status_code == 200, resp.content
    assert "Idempotent-Replayed" not in resp


@pytest.mark.django_db
def test_a_duplicate_while_the_first_runs_waits_then_gets_a_409(api, workspace, settings):
    settings.API_IDEMPOTENCY_WAIT_SECONDS = 0.2
    from engagement.api.idempotency import request_fingerprint  # noqa: F401 - the hash the row holds

    payload = {"identifiers": [{"kind": "email", "value": "d@example.com"}]}
    first = api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k5")
    record = IdempotencyRecord.objects.get(key="k5")
    IdempotencyRecord.objects.filter(pk=record.pk).update(response_status=None)  # as if still running
    body = problem(api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k5"), 409)
    assert body["code"] == "idempotency_key_in_flight"
    IdempotencyRecord.objects.filter(pk=record.pk).update(response_status=first.status_code)
    assert (
        api.post("/api/v1/customers/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k5").status_code == 201
    )


@pytest.mark.django_db
def test_message_send_keeps_its_own_idempotency_and_the_generic_layer(api, sms_channel, fake_twilio):
    body = {"channel_id": sms_channel.pk, "to": "+14155550123", "body": "once"}
    first = api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="m1")
    second = api.post("/api/v1/messages/", body, format="json", HTTP_IDEMPOTENCY_KEY="m1")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    other = problem(
        api.post("/api/v1/messages/", {**body, "body": "twice"}, format="json", HTTP_IDEMPOTENCY_KEY="m1"),
        422,
    )
    assert other["code"] == "idempotency_key_reused"
    assert Interaction.objects.get(pk=first.json()["id"]).idempotency_key == "api:m1"


# ---------------------------------------------------------------- scopes


@pytest.mark.django_db
def test_scopes_read_and_write_per_area(workspace, sms_channel):
    key, secret = api_key_create(workspace=workspace, name="ro", scopes=["customers:read", "channels:read"])
    client = _client(secret)
    assert client.get("/api/v1/customers/").status_code == 200
    assert client.get("/api/v1/channels/").status_code == 200
    denied = problem(
        client.post(
            "/api/v1/customers/", {"identifiers": [{"kind": "email", "value": "x@y.z"}]}, format="json"
        ),
        403,
    )
    assert (denied["code"], denied["required_scope"]) == ("scope_missing", "customers:write")
    assert problem(client.get("/api/v1/conversations/"), 403)["required_scope"] == "conversations:read"
    assert problem(client.get("/api/v1/customer-imports/1/"), 403)["required_scope"] == "imports:read"
    customer = factories.customer_create(workspace, ("phone", "+14155550100"))
    assert problem(client.get(f"/api/v1/customers/{customer.pk}/consent/"), 403)["required_scope"] == (
        "consent:read"
    )
    ApiKey.objects.filter(pk=key.pk).update(scopes=["customers:write", "consent:write", "channels:read"])
    assert client.get(f"/api/v1/customers/{customer.pk}/consent/").status_code == 200  # write implies read


@pytest.mark.django_db
def test_api_key_is_hashed_and_last_used_is_written_at_most_once_a_minute(workspace):
    key, secret = api_key_create(workspace=workspace, name="k")
    key.refresh_from_db()
    assert secret not in (key.key_hash, key.prefix)
    assert len(key.key_hash) == 64
    assert sorted(key.scopes) == sorted(ALL_SCOPES)
    client = _client(secret)
    client.get("/api/v1/channels/")
    key.refresh_from_db()
    first_use = key.last_used_at
    assert first_use is not None
    client.get("/api/v1/channels/")
    key.refresh_from_db()
    assert key.last_used_at == first_use


@pytest.mark.django_db
def test_a_key_of_one_workspace_reaches_nothing_of_another(workspace, sms_channel):
    """Every path of the schema, with the other workspace's ids: 404 for objects, empty lists."""
    other = factories.workspace_create()
    their_channel = factories.channel_create(other, "sms")
    their_customer = factories.customer_create(other, ("phone", "+14155550199"))
    their_conv = Conversation.objects.create(
        workspace=other, customer=their_customer, channel=their_channel, last_activity_at=timezone.now()
    )
    their_item = Interaction.objects.create(
        workspace=other,
        customer=their_customer,
        conversation=their_conv,
        channel=their_channel,
        direction="inbound",
        body="theirs",
        status="received",
        status_changed_at=timezone.now(),
        created_at=timezone.now(),
    )
    ids = {
        "channels": their_channel.pk,
        "customers": their_customer.pk,
        "conversations": their_conv.pk,
        "interactions": their_item.pk,
    }
    _, secret = api_key_create(workspace=workspace, name="mine")
    client = _client(secret)
    out = io.StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    import json

    paths = json.loads(out.getvalue())["paths"]
    checked = 0
    for path, operations in paths.items():
        segment = path.split("/")[3]
        for method in operations:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if "{" in path:
                url = re.sub(r"\{id\}", str(ids.get(segment, 10**9)), path)
                url = re.sub(r"\{\w+\}", "1", url)
                resp = getattr(client, method)(url, {}, format="json")
                assert resp.status_code in (404, 400), (method, url, resp.status_code, resp.content)
                checked += 1
            elif method == "get":
                required = {
                    p["name"]: "theirs"
                    for p in operations[method].get("parameters", [])
                    if p.get("in") == "query" and p.get("required")
                }
                data = client.get(path, required).json()
                rows = data["results"] if isinstance(data, dict) and "results" in data else data
                if isinstance(rows, dict):  # search: {"customers": [...], "messages": [...]}
                    rows = [r for v in rows.values() if isinstance(v, list) for r in v]
                assert all(
                    r.get("id") not in ids.values() or segment == "customer-attributes" for r in rows
                ), path
                checked += 1
    assert checked >= 20
    problem(
        client.post(
            "/api/v1/messages/",
            {"channel_id": their_channel.pk, "to": "+14155550123", "body": "x"},
            format="json",
        ),
        404,
    )


# ---------------------------------------------------------------- rate limits


@pytest.mark.django_db
def test_rate_limit_per_key_with_ietf_headers(workspace, settings):
    settings.API_RATE_LIMIT_REQUESTS = 3
    _, secret = api_key_create(workspace=workspace, name="rl")
    client = _client(secret)
    first = client.get("/api/v1/channels/")
    assert first["RateLimit-Policy"] == f'"per-key";q=3;w={settings.API_RATE_LIMIT_WINDOW_SECONDS}'
    assert re.fullmatch(r'"per-key";r=2;t=\d+', first["RateLimit"])
    client.get("/api/v1/channels/")
    client.get("/api/v1/channels/")
    limited = client.get("/api/v1/channels/")
    body = problem(limited, 429)
    assert body["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1
    assert re.fullmatch(r'"per-key";r=0;t=\d+', limited["RateLimit"])


@pytest.mark.django_db
def test_bad_keys_from_one_address_are_limited(workspace, settings):
    settings.API_AUTH_FAILURE_LIMIT = 5
    address = "10.77.0.1"
    redis.Redis.from_url(settings.REDIS_URL).delete(
        *redis.Redis.from_url(settings.REDIS_URL).keys(f"ratelimit:authfail:{address}:*") or ["none"]
    )
    client = _client("eng_0000_wrong", REMOTE_ADDR=address)
    statuses = [client.get("/api/v1/customers/").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    assert int(client.get("/api/v1/customers/")["Retry-After"]) >= 1
    _, secret = api_key_create(workspace=workspace, name="good")
    assert _client(secret, REMOTE_ADDR="10.77.0.2").get("/api/v1/customers/").status_code == 200


# ---------------------------------------------------------------- the schema


def test_schema_generates_with_zero_warnings(db):
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null", stdout=out, stderr=out)
    assert "Warning" not in out.getvalue()


def test_schema_documents_problems_and_idempotency(db):
    import json

    out = io.StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    schema = json.loads(out.getvalue())
    assert schema["openapi"].startswith("3.1")
    post = schema["paths"]["/api/v1/customers/"]["post"]
    assert {"400", "401", "403", "409", "422", "429"} <= post["responses"].keys()
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    identities = schema["paths"]["/api/v1/customers/{id}/identities/"]
    assert "201" in identities["post"]["responses"]
    assert "200" in identities["get"]["responses"]
    names = {p["name"] for p in schema["paths"]["/api/v1/conversations/"]["get"]["parameters"]}
    assert {"status", "channel", "customer", "cursor", "page_size"} <= names
    _ = settings


@pytest.mark.django_db
def test_expired_idempotency_records_are_purged(api, workspace):
    from engagement.tasks import idempotency_records_purge_task

    for key in ("old", "new"):
        api.post(
            "/api/v1/customers/",
            {"identifiers": [{"kind": "email", "value": f"{key}@example.com"}]},
            format="json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_records_purge_task() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_get_the_first_result(live_server):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    workspace = factories.workspace_create()
    _, secret = api_key_create(workspace=workspace, name="race")
    payload = {"identifiers": [{"kind": "email", "value": "race@example.com"}], "display_name": "R"}

    def post(_: int) -> httpx.Response:
        return httpx.post(
            f"{live_server.url}/api/v1/customers/",
            json=payload,
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "race-1"},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(post, range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.content for a in answers]
    assert all(a.json() == answers[0].json() for a in answers)  # jsonb keeps members, not their order
    assert Customer.objects.filter(workspace=workspace).count() == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3


@pytest.mark.django_db
def test_any_valid_key_reads_the_schema(workspace):
    _, secret = api_key_create(workspace=workspace, name="narrow", scopes=["channels:read"])
    resp = _client(secret).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert resp.status_code == 200, resp.content
    assert json.loads(resp.content)["openapi"] == "3.1.0"


@pytest.mark.django_db
def test_a_request_django_refuses_is_a_400_problem_under_the_api(api):
    """Django refuses more form fields than DATA_UPLOAD_MAX_NUMBER_FIELDS before any view runs; under
    /api/ the answer is still problem details (found by schemathesis)."""
    fields = "&".join(f"customer_ids={i}" for i in range(1500))
    resp = api.post("/api/v1/customers/", fields, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400
    assert resp["Content-Type"].startswith("application/problem+json")
    assert resp.json()["code"] == "bad_request"
