"""Team tools of the agent console: teams and their members, labels, private notes with @mentions and
canned responses. Assignment itself lives on :class:`engagement.models.Conversation` (``assignee``,
``team``); the services are in ``engagement/services/teamwork.py``."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .channels import Channel
from .tenancy import Workspace


class Team(models.Model):
    """A group of agents that shares an inbox. Conversations of the team's ``channels`` are given to its
    members round-robin when ``auto_assign`` is on, to members who are online (console websocket
    heartbeat, ``engagement.realtime``) and hold fewer than ``capacity`` open threads (0: no limit)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")
    channels = models.ManyToManyField(Channel, blank=True, related_name="teams")
    auto_assign = models.BooleanField(default=False)
    capacity = models.PositiveSmallIntegerField(default=0)
    # Round-robin cursor: the member who got the last automatic assignment.
    last_assigned_user_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="uniq_team_name")]

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=50)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="uniq_label_name")]

    def __str__(self) -> str:
        return self.name


class Note(models.Model):
    """A private note on a customer's thread: agents see it, the customer never does. ``mentions`` are the
    members named with ``@username`` in the body."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="notes")
    conversation = models.ForeignKey(
        "engagement.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="notes"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    body = models.TextField()
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="note_mentions")
    created_at = models.DateTimeField()

    is_note = True  # the thread's template tells notes from interactions by this

    class Meta:
        indexes = [
            models.Index(fields=["customer", "created_at"], name="note_customer_idx"),
            models.Index(fields=["workspace", "created_at"], name="note_workspace_idx"),
        ]

    def __str__(self) -> str:
        return f"Note {self.pk}"


class CannedResponse(models.Model):
    """A saved reply an agent inserts with ``/<shortcut>``; ``{{ customer.first_name }}``-style variables
    are filled in for the customer (``engagement.services.teamwork.canned_response_render``)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="canned_responses")
    shortcut = models.SlugField(max_length=40)
    title = models.CharField(max_length=100)
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "shortcut"], name="uniq_canned_shortcut")]

    def __str__(self) -> str:
        return f"/{self.shortcut}"
