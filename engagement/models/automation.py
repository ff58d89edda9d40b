"""Automation rules are data: a trigger, conditions and an action, editable without code."""

from __future__ import annotations

from django.db import models

from .channels import ChannelKind
from .tenancy import Workspace


class Trigger(models.TextChoices):
    MESSAGE_RECEIVED = "message.received", "An inbound message arrives"
    CONVERSATION_OPENED = "conversation.opened", "A new conversation opens"
    CALL_MISSED = "call.missed", "An inbound call ends without an agent answering"
    VOICEMAIL_RECEIVED = "voicemail.received", "A caller leaves a voicemail"


class MatchType(models.TextChoices):
    ANY = "any", "Any message"
    KEYWORD = "keyword", "Whole message is one of the keywords"
    CONTAINS = "contains", "Message contains one of the keywords as a word"


class Action(models.TextChoices):
    SEND_REPLY = "send_reply", "Send a reply on the same channel"


class AutomationRule(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="automation_rules")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    trigger = models.CharField(max_length=40, choices=Trigger.choices, default=Trigger.MESSAGE_RECEIVED)
    channel_kind = models.CharField(
        max_length=16, choices=ChannelKind.choices, blank=True, default="", help_text="Empty: any channel"
    )
    match_type = models.CharField(max_length=16, choices=MatchType.choices, default=MatchType.KEYWORD)
    keywords = models.CharField(max_length=500, blank=True, default="", help_text="Comma-separated")
    action = models.CharField(max_length=32, choices=Action.choices, default=Action.SEND_REPLY)
    reply_channel = models.ForeignKey(
        "engagement.Channel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Send the reply on this channel (e.g. SMS after a missed call). Empty: the same channel",
    )
    template = models.TextField(
        help_text=(
            "Reply text. Placeholders: {{ customer.display_name }}, {{ message.body }}, {{ workspace.name }}"
        )
    )
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name
