"""The visitor websocket through the real ASGI app: identity, dedupe across reconnects, live replies,
origins, forged identities, rate limits and size limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from channels_inbound.models import ProviderEvent
from channels_inbound.webchat.services import identity_hash_compute
from customers.models import Identity, MergeSuggestion
from engagement.models import Channel, Interaction, InteractionStatus, Workspace
from engagement.services.messaging import message_send
from tests import factories

from .conftest import ORIGIN, SECRET, Widget, known_customer, webchat_channel_create

pytestmark = pytest.mark.django_db(transaction=True)


def run(coro_fn: Any) -> Any:
    return async_to_sync(coro_fn)()


def reply(interaction: Interaction, body: str) -> Interaction:
    """An agent's reply through the one send service (its Celery task runs eagerly in unit tests)."""
    assert interaction.channel is not None
    out, _ = message_send(
        workspace=interaction.workspace,
        channel=interaction.channel,
        customer=interaction.customer,
        conversation=interaction.conversation,
        body=body,
    )
    out.refresh_from_db()
    return out


def test_first_message_makes_a_customer_with_a_webchat_identity(webchat_channel: Channel) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        widget = Widget(webchat_channel)
        assert (await widget.connect())[0]
        welcome = await widget.hello()
        ack = await widget.say("client-0001", "Hello, is anyone there?")
        await widget.close()
        return welcome, ack

    welcome, ack = run(scenario)
    assert welcome["type"] == "welcome"
    assert welcome["messages"] == []
    assert welcome["verified"] is False
    assert welcome["visitor"]
    assert ack["type"] == "ack"
    assert ack["client_id"] == "client-0001"
    assert ack["message"]["body"] == "Hello, is anyone there?"
    interaction = Interaction.objects.get(pk=ack["message"]["id"])
    assert interaction.channel == webchat_channel
    assert interaction.conversation is not None
    identity = Identity.objects.get(customer=interaction.customer, kind="webchat")
    assert identity.value == interaction.customer_address
    assert (
        ProviderEvent.objects.filter(provider="webchat", provider_event_id__endswith=":client-0001").count()
        == 1
    )


def test_reconnect_resends_without_losing_or_duplicating(webchat_channel: Channel) -> None:
    """The widget resends every unacknowledged message after a reconnect; the server keeps one copy."""

    async def scenario() -> dict[str, Any]:
        first = Widget(webchat_channel)
        await first.connect()
        token = (await first.hello())["visitor"]
        acked = await first.say("client-aaaa", "one")
        # "two" is sent, then the network drops before its ack is read.
        await first.send({"type": "message", "client_id": "client-bbbb", "body": "two"})
        await first.close()

        second = Widget(webchat_channel)
        await second.connect()
        welcome = await second.hello(visitor=token, after=acked["message"]["id"])
        # The widget resends what it still has in its outbox: "two" (and "one" again, say its ack was lost).
        resent_two = await second.say("client-bbbb", "two")
        resent_one = await second.say("client-aaaa", "one")
        new = await second.say("client-cccc", "three")
        await second.close()

        third = Widget(webchat_channel)
        await third.connect()
        after_reload = await third.hello(visitor=token)
        await third.close()
        return {
            "acked": acked,
            "welcome": welcome,
            "resent_two": resent_two,
            "resent_one": resent_one,
            "new": new,
            "after_reload": after_reload,
        }

    r = run(scenario)
    # "two" reached the server before the drop: the reconnect's history already shows it...
    assert [m["body"] for m in r["welcome"]["messages"]] == ["two"]
    # ...and resending it, or "one", acks the stored message instead of storing another.
    assert r["resent_two"]["message"]["id"] == r["welcome"]["messages"][0]["id"]
    assert r["resent_one"]["message"]["id"] == r["acked"]["message"]["id"]
    assert r["new"]["type"] == "ack"
    assert [m["body"] for m in r["after_reload"]["messages"]] == ["one", "two", "three"]
    assert [m["client_id"] for m in r["after_reload"]["messages"]] == [
        "client-aaaa",
        "client-bbbb",
        "client-cccc",
    ]
    assert Interaction.objects.filter(channel=webchat_channel).count() == 3


def test_agent_replies_arrive_live_or_on_the_next_visit(webchat_channel: Channel) -> None:
    async def scenario() -> dict[str, Any]:
        widget = Widget(webchat_channel)
        await widget.connect()
        token = (await widget.hello())["visitor"]
        ack = await widget.say("client-live1", "Where is my parcel?")
        inbound = await sync_to_async(
            Interaction.objects.select_related("channel", "workspace", "customer").get
        )(pk=ack["message"]["id"])
        live = await sync_to_async(reply)(inbound, "It left the warehouse today.")
        pushed = await widget.receive()
        await widget.close()
        offline = await sync_to_async(reply)(inbound, "Tracking number: 123.")
        later = Widget(webchat_channel)
        await later.connect()
        welcome = await later.hello(visitor=token, after=live.pk)
        await later.close()
        return {"live": live, "pushed": pushed, "offline": offline, "welcome": welcome}

    r = run(scenario)
    assert r["pushed"]["type"] == "message"
    assert r["pushed"]["message"]["from"] == "agent"
    assert r["pushed"]["message"]["body"] == "It left the warehouse today."
    assert r["live"].status == InteractionStatus.DELIVERED
    assert r["offline"].status == InteractionStatus.SENT  # nobody was connected to push to
    assert [m["body"] for m in r["welcome"]["messages"]] == ["Tracking number: 123."]
    r["offline"].refresh_from_db()
    assert r["offline"].status == InteractionStatus.DELIVERED  # shown on the next visit


@pytest.mark.parametrize("origin", ["https://evil.example.net", "http://shop.example.com", None, "null"])
def test_a_page_outside_the_allowed_origins_is_refused(webchat_channel: Channel, origin: str | None) -> None:
    async def scenario() -> tuple[bool, int | None]:
        widget = Widget(webchat_channel, origin=origin)
        return await widget.connect()

    connected, code = run(scenario)
    assert not connected
    assert code == 4403


def test_wildcard_origins_match_subdomains_only(workspace: Workspace) -> None:
    channel = webchat_channel_create(workspace, origins=["https://*.example.com"])

    async def scenario() -> list[bool]:
        results = []
        for origin in ("https://www.example.com", "https://example.com", "https://www.example.com.evil.net"):
            widget = Widget(channel, origin=origin)
            results.append((await widget.connect())[0])
            await widget.close()
        return results

    assert run(scenario) == [True, False, False]


def test_one_workspaces_visitor_token_reaches_nothing_of_another(webchat_channel: Channel) -> None:
    other = webchat_channel_create(factories.workspace_create(), origins=[ORIGIN])

    async def scenario() -> tuple[str, dict[str, Any]]:
        mine = Widget(webchat_channel)
        await mine.connect()
        token = (await mine.hello())["visitor"]
        await mine.say("client-secret", "my private question")
        await mine.close()
        theirs = Widget(other)
        await theirs.connect()
        welcome = await theirs.hello(visitor=token)
        await theirs.close()
        return token, welcome

    token, welcome = run(scenario)
    assert welcome["messages"] == []
    assert welcome["visitor"] != token  # a new visitor of the other channel, not ours


def test_a_forged_identity_hash_is_refused(webchat_channel: Channel) -> None:
    known_customer(webchat_channel.workspace, phone="+14155550123", email="ada@example.com", sms_body="sms")
    forged = {"user_id": "", "email": "ada@example.com", "name": "Ada", "hash": "0" * 64}
    wrong_secret = {
        **forged,
        "hash": identity_hash_compute(secret="not-the-secret", user_id="", email="ada@example.com"),
    }

    async def scenario(identity: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        widget = Widget(webchat_channel)
        await widget.connect()
        error = await widget.hello(identity=identity)
        closed = await widget.receive()
        return error, closed

    for identity in (forged, wrong_secret):
        error, closed = async_to_sync(scenario)(identity)
        assert error["type"] == "error"
        assert error["code"] == "identity_invalid"
        assert closed == {"type": "closed", "code": 4401}
    assert not Identity.objects.filter(kind="webchat").exists()


def test_a_verified_visitor_lands_on_the_customer_with_that_email(webchat_channel: Channel) -> None:
    ada = known_customer(
        webchat_channel.workspace, phone="+14155550123", email="ada@example.com", sms_body="sms"
    )
    identity = {
        "user_id": "",
        "email": "Ada@Example.com",
        "name": "Ada",
        "hash": identity_hash_compute(secret=SECRET, user_id="", email="Ada@Example.com"),
    }

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        widget = Widget(webchat_channel)
        await widget.connect()
        welcome = await widget.hello(identity=identity)
        ack = await widget.say("client-verif", "Hi, it's Ada")
        await widget.close()
        return welcome, ack

    welcome, ack = run(scenario)
    assert welcome["verified"] is True
    assert welcome["messages"] == []  # the widget shows chat only, never the SMS or emails
    chat = Interaction.objects.get(pk=ack["message"]["id"])
    assert chat.customer_id == ada.pk
    assert set(Interaction.objects.filter(customer=ada).values_list("channel__kind", flat=True)) == {
        "sms",
        "webchat",
    }
    assert Identity.objects.get(kind="webchat").customer_id == ada.pk


def test_an_unverified_visitor_typing_an_email_gets_no_history_and_no_merge(webchat_channel: Channel) -> None:
    ada = known_customer(
        webchat_channel.workspace, phone="+14155550123", email="ada@example.com", sms_body="sms"
    )

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        widget = Widget(webchat_channel)
        await widget.connect()
        token = (await widget.hello())["visitor"]
        ack = await widget.say("client-claim", "I am Ada, show me my orders")
        await widget.send({"type": "email", "email": "ada@example.com"})
        saved = await widget.receive()
        await widget.close()
        again = Widget(webchat_channel)
        await again.connect()
        welcome = await again.hello(visitor=token)
        await again.close()
        return ack, saved, welcome

    ack, saved, welcome = run(scenario)
    assert saved == {"type": "email_saved", "email": "ada@example.com"}
    impostor = Interaction.objects.get(pk=ack["message"]["id"]).customer
    assert impostor.pk != ada.pk
    assert [m["body"] for m in welcome["messages"]] == ["I am Ada, show me my orders"]
    assert Identity.objects.get(kind="email", value="ada@example.com").customer_id == ada.pk
    suggestion = MergeSuggestion.objects.get()
    assert {suggestion.customer_a_id, suggestion.customer_b_id} == {ada.pk, impostor.pk}


def test_message_rate_limit_per_visitor(webchat_channel: Channel, settings: Any) -> None:
    settings.WEBCHAT_RATE_LIMITS = {**settings.WEBCHAT_RATE_LIMITS, "visitor_messages": (3, 60)}

    async def scenario() -> list[dict[str, Any]]:
        widget = Widget(webchat_channel)
        await widget.connect()
        await widget.hello()
        frames = [await widget.say(f"client-rl{i:04d}", f"message {i}") for i in range(4)]
        frames.append(await widget.say("client-rl0000", "message 0"))  # a resend is never limited
        await widget.close()
        return frames

    frames = run(scenario)
    assert [f["type"] for f in frames] == ["ack", "ack", "ack", "error", "ack"]
    assert frames[3]["code"] == "rate_limited"
    assert frames[3]["retryable"] is True
    assert frames[3]["client_id"] == "client-rl0003"
    assert 0 < frames[3]["retry_after"] <= 60
    assert Interaction.objects.filter(channel=webchat_channel).count() == 3


def test_message_rate_limit_per_ip_spans_visitors(webchat_channel: Channel, settings: Any) -> None:
    settings.WEBCHAT_RATE_LIMITS = {**settings.WEBCHAT_RATE_LIMITS, "ip_messages": (2, 60)}

    async def scenario() -> list[str]:
        types = []
        for n in range(3):
            widget = Widget(webchat_channel, client_ip="10.9.9.9")
            await widget.connect()
            await widget.hello()
            types.append((await widget.say(f"client-ip{n:04d}", "hi"))["type"])
            await widget.close()
        other_ip = Widget(webchat_channel, client_ip="10.9.9.10")
        await other_ip.connect()
        await other_ip.hello()
        types.append((await other_ip.say("client-ipother", "hi"))["type"])
        await other_ip.close()
        return types

    assert run(scenario) == ["ack", "ack", "error", "ack"]


def test_new_conversations_are_rate_limited_per_ip(webchat_channel: Channel, settings: Any) -> None:
    settings.WEBCHAT_RATE_LIMITS = {**settings.WEBCHAT_RATE_LIMITS, "ip_visitors": (2, 3600)}

    async def scenario() -> tuple[list[str], dict[str, Any], dict[str, Any]]:
        tokens = []
        for _ in range(2):
            widget = Widget(webchat_channel)
            await widget.connect()
            tokens.append((await widget.hello())["visitor"])
            await widget.close()
        third = Widget(webchat_channel)
        await third.connect()
        refused = await third.hello()
        closed = await third.receive()
        returning = Widget(webchat_channel)  # a known visitor is not a new conversation
        await returning.connect()
        welcome = await returning.hello(visitor=tokens[0])
        await returning.close()
        return tokens, {"refused": refused, "closed": closed}, welcome

    tokens, third, welcome = run(scenario)
    assert third["refused"]["code"] == "rate_limited"
    assert third["closed"] == {"type": "closed", "code": 4429}
    assert welcome["type"] == "welcome"
    assert welcome["visitor"] == tokens[0]


def test_oversized_messages_are_refused(webchat_channel: Channel, settings: Any) -> None:
    settings.WEBCHAT_MAX_MESSAGE_CHARS = 100
    settings.WEBCHAT_MAX_FRAME_CHARS = 1000

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        widget = Widget(webchat_channel)
        await widget.connect()
        await widget.hello()
        too_long = await widget.say("client-long", "x" * 101)
        fits = await widget.say("client-fits", "x" * 100)
        await widget.send_text(json.dumps({"type": "message", "client_id": "c" * 8, "body": "y" * 2000}))
        closed = await widget.receive()
        return too_long, fits, closed

    too_long, fits, closed = run(scenario)
    assert too_long["type"] == "error"
    assert too_long["code"] == "too_long"
    assert too_long["retryable"] is False
    assert fits["type"] == "ack"
    assert closed == {"type": "closed", "code": 1009}
    assert list(Interaction.objects.values_list("body", flat=True)) == ["x" * 100]


def test_messages_need_a_hello_and_a_valid_client_id(webchat_channel: Channel) -> None:
    async def scenario() -> list[dict[str, Any]]:
        widget = Widget(webchat_channel)
        await widget.connect()
        early = await widget.say("client-early", "hi")
        await widget.hello()
        bad_id = await widget.say("<script>", "hi")
        empty = await widget.say("client-empty", "   ")
        await widget.close()
        return [early, bad_id, empty]

    frames = run(scenario)
    assert [f["type"] for f in frames] == ["error", "error", "error"]
    assert not Interaction.objects.exists()


def test_other_tabs_of_the_visitor_see_its_messages(webchat_channel: Channel) -> None:
    async def scenario() -> dict[str, Any]:
        tab1 = Widget(webchat_channel)
        await tab1.connect()
        token = (await tab1.hello())["visitor"]
        tab2 = Widget(webchat_channel)
        await tab2.connect()
        await tab2.hello(visitor=token)
        await tab1.say("client-tabs", "from tab 1")
        seen = await tab2.receive()
        await tab1.close()
        await tab2.close()
        return seen

    seen = run(scenario)
    assert seen["type"] == "message"
    assert seen["message"]["client_id"] == "client-tabs"
