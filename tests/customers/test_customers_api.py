"""The customer API: upsert by any identifier, CRUD, identities, merge with preview, the merged-id
pointer, unmerge, consent, export, erase, import, suggestions; always scoped to the key's workspace."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from customers.models import Customer, CustomerImport
from customers.profile import attribute_define
from engagement.services.tenancy import api_key_create
from tests import factories

pytestmark = pytest.mark.django_db


def _client(workspace):
    _, secret = api_key_create(workspace=workspace, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def api(workspace):
    return _client(workspace)


def test_upsert_by_any_identifier_then_update_and_list(api, workspace):
    attribute_define(workspace=workspace, key="plan", label="Plan", type="string")
    body = {
        "identifiers": [{"kind": "email", "value": "Ann@Example.com"}],
        "display_name": "Ann",
        "attributes": {"plan": "pro"},
        "tags": ["vip"],
    }
    resp = api.post("/api/v1/customers/", body, format="json")
    assert resp.status_code == 201, resp.content
    cid = resp.json()["id"]
    assert resp.json()["identities"][0]["value"] == "ann@example.com"
    again = api.post(
        "/api/v1/customers/",
        {
            "identifiers": [
                {"kind": "email", "value": "ann@example.com"},
                {"kind": "phone", "value": "+14155550100"},
            ]
        },
        format="json",
    )
    assert (again.status_code, again.json()["id"]) == (200, cid)
    assert {i["value"] for i in again.json()["identities"]} == {"ann@example.com", "+14155550100"}
    patched = api.patch(
        f"/api/v1/customers/{cid}/", {"timezone": "Europe/Oslo", "tags": ["a"]}, format="json"
    )
    assert patched.json()["effective_timezone"] == {"zone": "Europe/Oslo", "source": "explicit"}
    bad = api.patch(f"/api/v1/customers/{cid}/", {"attributes": {"nope": 1}}, format="json")
    assert bad.status_code == 400
    listed = api.get("/api/v1/customers/", {"tag": "a"}).json()["results"]
    assert [c["id"] for c in listed] == [cid]
    invalid = api.post(
        "/api/v1/customers/", {"identifiers": [{"kind": "phone", "value": "x"}]}, format="json"
    )
    assert invalid.status_code == 400


def test_identities_add_conflict_and_delete(api, workspace):
    ann = factories.customer_create(workspace, ("email", "ann@example.com"))
    bob = factories.customer_create(workspace, ("email", "bob@example.com"))
    url = f"/api/v1/customers/{ann.pk}/identities/"
    resp = api.post(url, {"kind": "phone", "value": "+14155550100", "verified": True}, format="json")
    assert resp.status_code == 201
    conflict = api.post(url, {"kind": "email", "value": "bob@example.com"}, format="json")
    assert (conflict.status_code, conflict.json()["owner_id"]) == (409, bob.pk)
    assert len(api.get(url).json()) == 2
    assert api.delete(f"{url}{resp.json()['id']}/").status_code == 204
    assert len(api.get(url).json()) == 1


def test_merge_preview_merge_pointer_and_undo(api, workspace):
    ann = factories.customer_create(workspace, ("email", "ann@example.com"), name="Ann")
    dup = factories.customer_create(workspace, ("phone", "+14155550100"))
    preview = api.post(
        f"/api/v1/customers/{ann.pk}/merge/", {"other_id": dup.pk, "preview": True}, format="json"
    )
    assert preview.status_code == 200
    assert [i["value"] for i in preview.json()["identities"]] == ["+14155550100"]
    assert Customer.objects.get(pk=dup.pk).merged_into_id is None
    merged = api.post(
        f"/api/v1/customers/{ann.pk}/merge/", {"other_id": dup.pk, "note": "same"}, format="json"
    )
    assert merged.status_code == 201
    merge_id = merged.json()["id"]
    assert merged.json()["source"] == "api"

    moved = api.get(f"/api/v1/customers/{dup.pk}/")
    assert moved.status_code == 301
    assert moved.json()["merged_into"] == ann.pk
    assert moved["Location"].endswith(f"/api/v1/customers/{ann.pk}/")
    assert api.get(f"/api/v1/customers/{dup.pk}/timeline/")["Location"].endswith(
        f"/customers/{ann.pk}/timeline/"
    )
    gone = api.patch(f"/api/v1/customers/{dup.pk}/", {"display_name": "x"}, format="json")
    assert (gone.status_code, gone.json()["merged_into"]) == (410, ann.pk)
    assert [c["id"] for c in api.get("/api/v1/customers/").json()["results"]] == [ann.pk]
    assert [m["id"] for m in api.get(f"/api/v1/customers/{ann.pk}/merges/").json()] == [merge_id]

    undo = api.post(f"/api/v1/customer-merges/{merge_id}/undo/")
    assert undo.status_code == 200
    assert undo.json()["undone_at"]
    assert api.get(f"/api/v1/customers/{dup.pk}/").status_code == 200
    assert api.post(f"/api/v1/customer-merges/{merge_id}/undo/").status_code == 409
    assert api.get("/api/v1/customers/999999/").status_code == 404


def test_consent_read_and_write(api, workspace):
    ann = factories.customer_create(workspace, ("email", "ann@example.com"))
    url = f"/api/v1/customers/{ann.pk}/consent/"
    assert api.get(url).json()["state"]["email"]["marketing"] is None
    resp = api.post(
        url,
        {"channel": "email", "purpose": "marketing", "status": "opted_in", "evidence": {"form": "x"}},
        format="json",
    )
    assert resp.status_code == 201
    assert resp.json()["state"]["email"]["marketing"] == "opted_in"
    assert resp.json()["history"][0]["source"] == "api"
    assert api.post(url, {"channel": "fax", "status": "opted_in"}, format="json").status_code == 400


def test_export_and_erase(api, workspace):
    ann = factories.customer_create(workspace, ("email", "ann@example.com"), name="Ann")
    export = api.get(f"/api/v1/customers/{ann.pk}/export/").json()
    assert export["identities"][0]["value"] == "ann@example.com"
    erased = api.post(f"/api/v1/customers/{ann.pk}/erase/", {"reason": "request"}, format="json")
    assert erased.status_code == 200
    assert erased.json()["counts"]["identities"] == 1
    assert api.get(f"/api/v1/customers/{ann.pk}/").json()["display_name"] == ""
    bob = factories.customer_create(workspace, ("email", "bob@example.com"))
    assert api.delete(f"/api/v1/customers/{bob.pk}/").status_code == 204
    assert Customer.objects.get(pk=bob.pk).erased_at is not None


def test_import_runs_in_a_task_and_reports_progress(api, workspace, django_capture_on_commit_callbacks):
    csv_text = "name,email\nAnn,ann@example.com\nBad,nope\n"
    with django_capture_on_commit_callbacks(execute=True):
        resp = api.post("/api/v1/customer-imports/", {"csv": csv_text}, format="json")
    assert resp.status_code == 202
    report = api.get(f"/api/v1/customer-imports/{resp.json()['id']}/").json()
    assert (report["status"], report["created_count"], report["failed_count"]) == ("done", 1, 1)
    assert report["errors"][0]["row"] == 2
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("people.csv", b"email\nzed@example.com\n", content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        resp = api.post("/api/v1/customer-imports/", {"file": upload}, format="multipart")
    assert resp.status_code == 202
    assert CustomerImport.objects.get(pk=resp.json()["id"]).created_count == 1


def test_suggestions_refresh_accept_dismiss(api, workspace):
    a = factories.customer_create(workspace, ("email", "jo+x@gmail.com"))
    b = factories.customer_create(workspace, ("email", "jo@gmail.com"))
    api.post("/api/v1/merge-suggestions/refresh/")
    [suggestion] = api.get("/api/v1/merge-suggestions/").json()
    assert (suggestion["customer_a_id"], suggestion["customer_b_id"]) == (a.pk, b.pk)
    accepted = api.post(f"/api/v1/merge-suggestions/{suggestion['id']}/accept/")
    assert accepted.status_code == 201
    assert accepted.json()["survivor_id"] == a.pk
    assert api.post(f"/api/v1/merge-suggestions/{suggestion['id']}/dismiss/").json()["status"] == "accepted"


def test_attribute_definitions(api):
    assert (
        api.post("/api/v1/customer-attributes/", {"key": "ltv", "label": "LTV", "type": "number"}).status_code
        == 201
    )
    assert (
        api.post(
            "/api/v1/customer-attributes/", {"key": "Bad Key", "label": "x", "type": "number"}
        ).status_code
        == 400
    )
    assert [d["key"] for d in api.get("/api/v1/customer-attributes/").json()] == ["ltv"]


def test_everything_is_scoped_to_the_keys_workspace(api, workspace):
    other = factories.workspace_create()
    theirs = factories.customer_create(other, ("email", "them@example.com"))
    mine = factories.customer_create(workspace, ("email", "me@example.com"))
    for path in ("", "timeline/", "identities/", "consent/", "export/", "merges/"):
        assert api.get(f"/api/v1/customers/{theirs.pk}/{path}").status_code == 404
    assert api.post(f"/api/v1/customers/{theirs.pk}/erase/").status_code == 404
    merge = api.post(f"/api/v1/customers/{mine.pk}/merge/", {"other_id": theirs.pk}, format="json")
    assert merge.status_code == 404
    assert api.get("/api/v1/customers/", {"identity": "them@example.com"}).json()["results"] == []


def test_listing_customers_costs_the_same_queries_for_one_or_many(
    api, workspace, django_assert_max_num_queries
):
    factories.customer_create(workspace, ("phone", "+4722334455"), name="First")
    api.get("/api/v1/customers/")  # the key's first use writes its last-used time once
    with django_assert_max_num_queries(50) as one:
        assert len(api.get("/api/v1/customers/").json()["results"]) == 1
    for n in range(5):
        factories.customer_create(workspace, ("phone", f"+47223344{n:02d}"), name=f"N{n}")
    with django_assert_max_num_queries(50) as six:
        body = api.get("/api/v1/customers/").json()
    assert len(body["results"]) == 6
    # The effective time zone comes from the prefetched identities, not one query per customer.
    assert body["results"][0]["effective_timezone"] == {"zone": "Europe/Oslo", "source": "phone"}
    assert len(six.captured_queries) == len(one.captured_queries)
