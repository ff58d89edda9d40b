"""The `make run` demo: idempotent, and one customer's SMS, MMS, email thread and voicemail share one
timeline that the console shows in one conversation view."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from customers.models import Identity
from engagement.models import Attachment, Conversation, Interaction
from engagement.services.demo import demo_workspace_seed


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_joins_every_channel_on_one_timeline(client):
    seed = demo_workspace_seed()
    counts = (Interaction.objects.count(), Attachment.objects.count(), Conversation.objects.count())
    demo_workspace_seed()
    assert (Interaction.objects.count(), Attachment.objects.count(), Conversation.objects.count()) == counts

    grace = Identity.objects.get(workspace=seed.workspace, kind="phone", value="+15005550101").customer
    timeline = Interaction.objects.filter(customer=grace)
    kinds = {(i.channel.kind if i.channel else "", i.kind) for i in timeline}
    assert {("sms", "message"), ("email", "message"), ("voice", "call")} <= kinds
    mms = timeline.get(provider_message_id="MMDEMO0001")
    assert mms.attachments.get().content_type == "image/png"
    call = timeline.get(kind="call")
    assert call.body  # the voicemail transcript

    # Through the sign-in page (django-axes needs the request to count attempts).
    signed_in = client.post("/login/", {"username": "agent", "password": "demo-pass-123"})
    assert signed_in.status_code == 302
    sms_conversation = Conversation.objects.filter(customer=grace, channel__kind="sms").first()
    assert sms_conversation is not None
    page = client.get(f"/conversations/{sms_conversation.pk}/").content.decode()
    assert "keyboard.png" in page or f"/attachments/{mms.attachments.get().pk}/" in page
    assert escape(call.body[:30]) in page
    assert "invoice" in page  # the email thread

    from engagement.segments.services import segment_count, segment_reachable_counts

    segment = seed.workspace.segments.get(name="Customers with an SMS opt-in who wrote in the last 30 days")
    assert segment_count(segment=segment) == 2  # Grace and Alan opted in; everyone wrote by SMS
    assert segment_reachable_counts(segment=segment, purpose="marketing")["sms"] == 2
    assert seed.workspace.segments.count() == 1  # seeding again adds nothing

    # The team tools in use: a team, Grace's thread assigned to Alex with labels, a note mentioning him.
    from engagement.models import Note

    team = seed.workspace.teams.get()
    assert sorted(team.members.values_list("username", flat=True)) == ["admin", "agent"]
    assert set(
        Conversation.objects.filter(customer=grace)
        .exclude(status="resolved")
        .values_list("assignee__username", flat=True)
    ) == {"agent"}
    note = Note.objects.get(customer=grace)
    assert list(note.mentions.values_list("username", flat=True)) == ["agent"]
    assert "one of our oldest customers" in page
    assert 'data-label="vip"' in page
    assert seed.workspace.canned_responses.count() == 2
    mine = client.get("/?view=mine").content.decode()
    assert f'data-customer-id="{grace.pk}"' in mine


@pytest.mark.django_db
def test_demo_has_no_placeholder_text_and_the_bot_never_answers_after_a_human(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):  # automations run, eagerly, after each commit
        seed = demo_workspace_seed()
    previews = list(
        Conversation.objects.filter(workspace=seed.workspace).values_list("last_message_preview", flat=True)
    )
    assert all(p and not p.startswith("(") for p in previews), previews
    for customer_id in (
        Interaction.objects.filter(workspace=seed.workspace).values_list("customer_id", flat=True).distinct()
    ):
        human_at = None
        for item in Interaction.objects.filter(customer_id=customer_id).order_by("created_at", "id"):
            if item.direction == "outbound" and item.author_id is not None:
                human_at = human_at or item.created_at
            elif item.direction == "outbound" and human_at is not None:
                assert item.automation_rule_id is None, f"the bot answered after a human: {item.body!r}"
    # Linus wrote HOURS, which the "Opening hours" rule answers, but Alex Agent had answered him already.
    linus = Identity.objects.get(workspace=seed.workspace, value="+15005550104").customer
    bodies = list(
        Interaction.objects.filter(customer=linus, direction="outbound").values_list("body", flat=True)
    )
    assert bodies == ["Hi Linus, we're open Monday to Friday, 9:00 to 17:00."]


@pytest.mark.django_db(transaction=True)
def test_seed_demo_command_runs_outside_a_test_transaction_and_twice():
    """``make run`` seeds a fresh database with the command, in autocommit: nothing may rely on the test
    transaction (select_for_update outside a transaction fails), and a second run adds nothing."""
    from django.core.management import call_command

    from engagement.models import Campaign

    call_command("seed_demo")
    call_command("seed_demo")
    names = sorted(Campaign.objects.filter(workspace__slug="demo").values_list("name", "state"))
    assert len(names) == 2, names
    assert any(state == "completed" for _, state in names), names
    from engagement.models import Journey
    from engagement.services.demo import DEMO_JOURNEY_BROCHURE, DEMO_JOURNEY_MISSED_CALL

    journeys = dict(
        Journey.objects.filter(workspace__slug="demo", automation_rule__isnull=True).values_list(
            "name", "status"
        )
    )
    assert journeys == {DEMO_JOURNEY_MISSED_CALL: "live", DEMO_JOURNEY_BROCHURE: "live"}


PLACEHOLDERS = (
    "lorem",
    "ipsum",
    "todo",
    "tbd",
    "placeholder",
    "foo",
    "xxx",
    "{{",
    "}}",
    "(no ",
    "test message",
)


@pytest.mark.django_db
def test_the_seeded_text_has_no_placeholders_and_no_automatic_send_follows_a_human(
    django_capture_on_commit_callbacks,
):
    """Every text the demo shows (messages, notes, names, canned responses, tasks, campaign and journey
    names) reads as real content; and no automatic outbound message (automation rule, journey, bot: no
    author) follows a person's reply to the same customer."""
    from customers.models import Customer
    from engagement.models import AgentTask, Campaign, CannedResponse, Journey, Note

    with django_capture_on_commit_callbacks(execute=True):
        seed = demo_workspace_seed()
    ws = seed.workspace
    texts: list[str] = []
    texts += [b for b in Interaction.objects.filter(workspace=ws).values_list("body", flat=True) if b]
    texts += list(Note.objects.filter(workspace=ws).values_list("body", flat=True))
    texts += list(Customer.objects.filter(workspace=ws).values_list("display_name", flat=True))
    texts += list(CannedResponse.objects.filter(workspace=ws).values_list("title", flat=True))
    texts += list(AgentTask.objects.filter(workspace=ws).values_list("title", flat=True))
    texts += list(Campaign.objects.filter(workspace=ws).values_list("name", flat=True))
    texts += list(Journey.objects.filter(workspace=ws).values_list("name", flat=True))
    assert texts
    bad = [t for t in texts if any(p in t.lower() for p in PLACEHOLDERS) or not t.strip()]
    assert bad == []
    assert all(name for name in Customer.objects.filter(workspace=ws).values_list("display_name", flat=True))
    for customer_id in (
        Interaction.objects.filter(workspace=ws).values_list("customer_id", flat=True).distinct()
    ):
        human_at = None
        for item in Interaction.objects.filter(customer_id=customer_id, kind="message").order_by(
            "created_at", "id"
        ):
            if item.direction == "outbound" and item.author_id is not None:
                human_at = human_at or item.created_at
            elif item.direction == "outbound" and human_at is not None:
                automatic = item.automation_rule_id is not None or "journey_id" in (item.metadata or {})
                assert not automatic, f"an automatic send after a human: {item.body!r}"
