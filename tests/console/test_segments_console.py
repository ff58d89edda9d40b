"""Console for marketers: the segments list and builder, their role check, and the role-based home."""

from __future__ import annotations

import html as html_lib
import json
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from customers.profile import attribute_define
from engagement.models import Role, Segment, Workspace
from tests import factories

pytestmark = pytest.mark.django_db


def _client(workspace: Workspace, role: str) -> Client:
    client = Client()
    client.force_login(factories.member(workspace, role))
    return client


def _textarea(html: str) -> Any:
    match = re.search(r'<textarea id="rules-json" name="rules"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, "the builder keeps the rules in a form field"
    return json.loads(html_lib.unescape(match.group(1)))


@pytest.mark.parametrize(("role", "sees"), [(Role.MARKETER, True), (Role.ADMIN, True), (Role.AGENT, False)])
def test_segments_are_for_marketers_and_admins(workspace: Workspace, role: str, sees: bool) -> None:
    client = _client(workspace, role)
    inbox = client.get(reverse("console:inbox")).content.decode()
    assert ('href="/segments/"' in inbox) is sees
    assert client.get(reverse("console:segments")).status_code == (200 if sees else 403)
    assert client.get(reverse("console:segment_new")).status_code == (200 if sees else 403)


def test_home_sends_marketers_to_campaigns_and_agents_to_the_inbox(workspace: Workspace) -> None:
    assert _client(workspace, Role.MARKETER).get(reverse("console:home"))["Location"] == reverse(
        "console:campaigns"
    )
    assert _client(workspace, Role.AGENT).get(reverse("console:home"))["Location"] == reverse("console:inbox")


def test_create_edit_round_trip_and_delete(workspace: Workspace) -> None:
    attribute_define(workspace=workspace, key="plan", label="Plan", type="string")
    client = _client(workspace, Role.MARKETER)
    rules = {
        "type": "and",
        "rules": [
            {"type": "attribute", "key": "plan", "operator": "equals", "value": "pro"},
            {"type": "not", "rule": {"type": "or", "rules": [{"type": "tag", "value": "churned"}]}},
        ],
    }
    resp = client.post(
        reverse("console:segment_new"),
        {"name": "Pro plan", "description": "Paying", "kind": "dynamic", "rules": json.dumps(rules)},
    )
    assert resp.status_code == 302
    segment = Segment.objects.get(workspace=workspace, name="Pro plan")
    assert resp["Location"] == reverse("console:segment", kwargs={"segment_id": segment.pk})

    page = client.get(resp["Location"]).content.decode()
    shown = _textarea(page)
    assert shown == segment.rules
    assert 'id="segment-schema"' in page  # attributes and vocabularies for the builder
    assert "console/segments.js" in page
    # Posting the page's own field back changes nothing.
    resp = client.post(
        resp["Location"], {"name": "Pro plan", "description": "Paying", "rules": json.dumps(shown)}
    )
    assert resp.status_code == 302
    segment.refresh_from_db()
    assert segment.rules == shown

    listing = client.get(reverse("console:segments")).content.decode()
    assert "Pro plan" in listing
    resp = client.post(reverse("console:segment_delete", kwargs={"segment_id": segment.pk}))
    assert resp["Location"] == reverse("console:segments")
    assert not Segment.objects.filter(pk=segment.pk).exists()


def test_invalid_rules_are_shown_with_the_node_path(workspace: Workspace) -> None:
    client = _client(workspace, Role.MARKETER)
    bad = {"type": "and", "rules": [{"type": "tag", "value": "ok"}, {"type": "consent", "channel": "fax"}]}
    resp = client.post(
        reverse("console:segment_new"), {"name": "Bad", "kind": "dynamic", "rules": json.dumps(bad)}
    )
    assert resp.status_code == 400
    assert "$.rules[1]: &#x27;channel&#x27; must be one of" in resp.content.decode()
    resp = client.post(reverse("console:segment_new"), {"name": "Bad", "kind": "dynamic", "rules": "{nope"})
    assert resp.status_code == 400
    assert "not valid JSON" in resp.content.decode()
    assert not Segment.objects.exists()


def test_static_list_upload_from_the_console(workspace: Workspace) -> None:
    client = _client(workspace, Role.ADMIN)
    resp = client.post(
        reverse("console:segment_new"), {"name": "Launch list", "kind": "static", "static_tag": ""}
    )
    segment = Segment.objects.get(name="Launch list")
    assert segment.kind == "static"
    upload = SimpleUploadedFile("list.csv", b"email,phone\nann@example.com,\n,+14155550123\n", "text/csv")
    resp = client.post(
        reverse("console:segment_upload", kwargs={"segment_id": segment.pk}),
        {"file": upload, "create_missing": "on"},
        follow=True,
    )
    assert "2 rows: 2 added" in resp.content.decode()
    assert segment.members.count() == 2


def test_another_workspaces_segment_is_404(workspace: Workspace) -> None:
    theirs = Segment.objects.create(workspace=factories.workspace_create(), name="Theirs")
    client = _client(workspace, Role.MARKETER)
    assert client.get(reverse("console:segment", kwargs={"segment_id": theirs.pk})).status_code == 404
