"""The agent side of webchat: automations on chat events that answer live, the console's presence
(which decides what the widget promises) and the agent's typing indicator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.test import Client

from channels_inbound.webchat.services import webchat_availability
from config.asgi import application
from engagement.models import AutomationRule, Channel, Interaction, Workspace
from engagement.models.automation import MatchType, Trigger

from .conftest import Widget, webchat_channel_create

pytestmark = pytest.mark.django_db(transaction=True)


async def frames_until(widget: Widget, wanted: int) -> list[dict[str, Any]]:
    return [await widget.receive() for _ in range(wanted)]


def test_automations_answer_chat_started_and_chat_message_live(webchat_channel: Channel) -> None:
    workspace = webchat_channel.workspace
    AutomationRule.objects.create(
        workspace=workspace,
        name="Welcome a new chat",
        trigger=Trigger.CONVERSATION_OPENED,
        channel_kind="webchat",
        match_type=MatchType.ANY,
        template="Welcome to {{ workspace.name }}!",
    )
    AutomationRule.objects.create(
        workspace=workspace,
        name="Hours",
        trigger=Trigger.MESSAGE_RECEIVED,
        channel_kind="webchat",
        match_type=MatchType.CONTAINS,
        keywords="hours",
        template="We're open 9-17.",
    )

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        widget = Widget(webchat_channel)
        await widget.connect()
        await widget.hello()
        await widget.send({"type": "message", "client_id": "client-auto1", "body": "hi"})
        first = await frames_until(widget, 2)  # the ack and the welcome, in either order
        await widget.send({"type": "message", "client_id": "client-auto2", "body": "what are your hours?"})
        second = await frames_until(widget, 2)
        await widget.close()
        return first, second

    first, second = async_to_sync(scenario)()
    pushed = [f["message"] for f in first + second if f["type"] == "message"]
    assert [m["body"] for m in pushed] == [f"Welcome to {workspace.name}!", "We're open 9-17."]
    assert all(m["from"] == "agent" for m in pushed)
    assert sorted(f["client_id"] for f in first + second if f["type"] == "ack") == [
        "client-auto1",
        "client-auto2",
    ]
    assert set(
        Interaction.objects.filter(direction="outbound").values_list("status", "automation_rule__name")
    ) == {("delivered", "Welcome a new chat"), ("delivered", "Hours")}


def console_scope(client: Client) -> dict[str, Any]:
    session = client.cookies["sessionid"].value
    return {
        "type": "websocket",
        "path": "/ws/console/",
        "raw_path": b"/ws/console/",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"cookie", f"sessionid={session}".encode())],
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def test_an_open_console_means_online_and_the_agents_typing_reaches_the_visitor(
    webchat_channel: Channel, agent: Any, agent_client: Client
) -> None:
    agent.first_name, agent.last_name = "Alex", "Agent"
    agent.save()
    availability = sync_to_async(webchat_availability)

    async def scenario() -> dict[str, Any]:
        widget = Widget(webchat_channel)
        await widget.connect()
        await widget.hello()
        ack = await widget.say("client-typing", "anyone there?")
        conversation_id = await sync_to_async(
            lambda: Interaction.objects.get(pk=ack["message"]["id"]).conversation_id
        )()
        before = await availability(channel=webchat_channel)
        console = ApplicationCommunicator(application, console_scope(agent_client))
        await console.send_input({"type": "websocket.connect"})
        assert (await console.receive_output(5))["type"] == "websocket.accept"
        during = await availability(channel=webchat_channel)
        await console.send_input(
            {
                "type": "websocket.receive",
                "text": json.dumps({"type": "typing", "conversation_id": conversation_id, "typing": True}),
            }
        )
        typing = await widget.receive()
        await console.send_input({"type": "websocket.disconnect", "code": 1000})
        await console.wait(5)
        after = await availability(channel=webchat_channel)
        await widget.close()
        return {"before": before, "during": during, "typing": typing, "after": after}

    r = async_to_sync(scenario)()
    assert r["before"]["online"] is False
    assert r["during"]["online"] is True
    assert r["typing"] == {"type": "typing", "author": "Alex Agent", "typing": True}
    assert r["after"]["online"] is False


def test_outside_office_hours_the_widget_gives_the_reply_time(workspace: Workspace) -> None:
    channel = webchat_channel_create(
        workspace,
        office_hours={"timezone": "Europe/Berlin", "days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"},
        reply_time_text="We reply within one business day.",
    )
    saturday_noon = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)
    monday_night = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    monday_morning = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    for at in (saturday_noon, monday_night):
        assert webchat_availability(channel=channel, now=at) == {
            "online": False,
            "in_office_hours": False,
            "reply_time_text": "We reply within one business day.",
        }
    assert webchat_availability(channel=channel, now=monday_morning)["in_office_hours"] is True
