"""The console only ever shows and touches the current workspace; members of several can switch."""

from __future__ import annotations

import pytest
from django.test import Client

from engagement.models import ApiKey, Conversation, Interaction, Membership, Role
from engagement.services.tenancy import api_key_create
from tests import factories

from .conftest import inbound


@pytest.fixture
def other_workspace_conversation(fake_twilio):
    other = factories.workspace_create(name="Other Co")
    channel = factories.twilio_channel(other, fake_twilio)
    return inbound(channel, "+14155550101", "secret of workspace B", name="B's customer")


@pytest.mark.django_db
def test_agent_of_a_cannot_reach_conversations_of_b(
    agent_client: Client, sms_channel, other_workspace_conversation, fake_twilio
) -> None:
    mine = inbound(sms_channel, "+14155550101", "hello A")  # the same phone writes to both
    theirs = other_workspace_conversation
    inbox = agent_client.get("/?status=all").content.decode()
    assert f'data-conversation-id="{mine.conversation_id}"' in inbox
    assert f'data-conversation-id="{theirs.conversation_id}"' not in inbox
    assert "secret of workspace B" not in inbox
    assert "secret of workspace B" not in agent_client.get("/?fragment=1&status=all").content.decode()

    url = f"/conversations/{theirs.conversation_id}/"
    assert agent_client.get(url).status_code == 404
    assert agent_client.get(url + "?fragment=1").status_code == 404
    assert agent_client.post(url, {"body": "sneaky"}).status_code == 404
    assert agent_client.post(url + "status/", {"status": "resolved"}).status_code == 404
    assert not Interaction.objects.filter(direction="outbound").exists()
    assert fake_twilio.messages == []
    assert Conversation.objects.get(pk=theirs.conversation_id).status == "open"

    # The timeline of my customer does not leak B's interactions with the same phone number.
    page = agent_client.get(f"/conversations/{mine.conversation_id}/").content.decode()
    assert "hello A" in page
    assert "secret of workspace B" not in page


@pytest.mark.django_db
def test_admin_of_a_cannot_revoke_a_key_of_b(workspace) -> None:
    other = factories.workspace_create()
    key, _ = api_key_create(workspace=other, name="theirs")
    client = Client()
    client.force_login(factories.member(workspace, Role.ADMIN))
    assert client.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 404
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    assert "theirs" not in client.get("/settings/api-keys/").content.decode()


@pytest.mark.django_db
def test_member_of_two_workspaces_switches_between_them(
    client: Client, workspace, sms_channel, other_workspace_conversation
) -> None:
    mine = inbound(sms_channel, "+14155550102", "hello A")
    other = other_workspace_conversation.workspace
    user = factories.member(workspace)
    Membership.objects.create(workspace=other, user=user, role=Role.AGENT)
    client.force_login(user)

    inbox = client.get("/").content.decode()
    assert 'name="workspace_id"' in inbox  # the switcher
    assert "Other Co" in inbox
    default = min([workspace, other], key=lambda w: (w.name, w.pk))
    shown = mine if default == workspace else other_workspace_conversation
    assert f'data-conversation-id="{shown.conversation_id}"' in inbox

    resp = client.post("/workspace/switch/", {"workspace_id": other.pk})
    assert resp.status_code == 302
    assert client.session["workspace_id"] == other.pk
    inbox = client.get("/").content.decode()
    assert f'data-conversation-id="{other_workspace_conversation.conversation_id}"' in inbox
    assert f'data-conversation-id="{mine.conversation_id}"' not in inbox
    assert client.get(f"/conversations/{mine.conversation_id}/").status_code == 404

    client.post("/workspace/switch/", {"workspace_id": workspace.pk})
    assert client.get(f"/conversations/{mine.conversation_id}/").status_code == 200


@pytest.mark.django_db
def test_switching_into_a_foreign_workspace_is_refused(
    agent_client: Client, agent, workspace, sms_channel, other_workspace_conversation
) -> None:
    other = other_workspace_conversation.workspace
    resp = agent_client.post("/workspace/switch/", {"workspace_id": other.pk})
    assert resp.status_code == 302
    assert agent_client.session.get("workspace_id") != other.pk
    # Even a forged session value does not switch: the stale id is dropped.
    session = agent_client.session
    session["workspace_id"] = other.pk
    session.save()
    page = agent_client.get("/?status=all").content.decode()
    assert "secret of workspace B" not in page
    assert workspace.name in page
    assert (
        agent_client.get(f"/conversations/{other_workspace_conversation.conversation_id}/").status_code == 404
    )
