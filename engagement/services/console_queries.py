"""Read-only selectors for the agent console. Every one of them is scoped to a workspace."""

from __future__ import annotations

from django.db import models
from django.db.models import Prefetch, QuerySet

from customers.models import Customer, Identity, IdentityKind
from engagement.models import ApiKey, Channel, ChannelKind, Conversation, Interaction, Workspace
from engagement.models.conversations import ConversationStatus

# The console shows at most this many interactions of one customer (the newest ones).
TIMELINE_LIMIT = 200


def conversation_list_for_inbox(*, workspace: Workspace, status: str | None) -> QuerySet[Conversation]:
    """The workspace's conversations, newest activity first; ``status=None`` means every status.

    Rows carry ``customer``, ``channel`` and ``customer.phones`` (newest first) in a bounded number
    of queries whatever the page size.
    """
    qs = Conversation.objects.filter(workspace=workspace)
    if status is not None:
        qs = qs.filter(status=status)
    return (
        qs.select_related("customer", "channel")
        .prefetch_related(
            Prefetch(
                "customer__identities",
                queryset=Identity.objects.filter(kind=IdentityKind.PHONE).order_by("-last_seen_at"),
                to_attr="phones",
            )
        )
        .order_by("-last_activity_at", "-id")
    )


def conversation_get(*, workspace: Workspace, conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.select_related("customer", "channel")
        .filter(workspace=workspace, pk=conversation_id)
        .first()
    )


def conversation_newest_for_customer(*, workspace: Workspace, customer: Customer) -> Conversation | None:
    """The customer's newest unresolved conversation, else their newest one (the thread's status bar)."""
    return (
        Conversation.objects.filter(workspace=workspace, customer=customer)
        .select_related("channel")
        .order_by(
            models.Case(models.When(status=ConversationStatus.RESOLVED, then=1), default=0),
            "-last_activity_at",
            "-id",
        )
        .first()
    )


def conversation_ids_for_customer(*, workspace: Workspace, customer: Customer) -> list[int]:
    return list(
        Conversation.objects.filter(workspace=workspace, customer=customer).values_list("pk", flat=True)
    )


def identity_list_for_customer(*, workspace: Workspace, customer: Customer) -> list[Identity]:
    return list(Identity.objects.filter(workspace=workspace, customer=customer).order_by("kind", "value"))


def interaction_list_for_timeline(
    *, workspace: Workspace, customer: Customer, limit: int = TIMELINE_LIMIT
) -> tuple[list[Interaction], bool]:
    """The customer's unified timeline across every conversation and channel, oldest first.

    Returns the newest ``limit`` interactions and whether older ones were left out.
    """
    newest = list(
        Interaction.objects.filter(workspace=workspace, customer=customer)
        .select_related("channel", "author", "automation_rule", "answered_by")
        .prefetch_related("attachments")  # email, MMS, recordings and chat files, in one query
        .order_by("-created_at", "-id")[: limit + 1]
    )
    truncated = len(newest) > limit
    return list(reversed(newest[:limit])), truncated


def channel_list_for_simulator(*, workspace: Workspace) -> QuerySet[Channel]:
    """Active SMS channels a fake inbound message can arrive on."""
    return Channel.objects.filter(workspace=workspace, kind=ChannelKind.SMS, is_active=True).order_by(
        "name", "id"
    )


def api_key_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(workspace=workspace).select_related("created_by").order_by("-created_at")


def api_key_get(*, workspace: Workspace, key_id: int) -> ApiKey | None:
    return ApiKey.objects.filter(workspace=workspace, pk=key_id).first()


def interaction_conversation_id(
    *, workspace: Workspace, channel: Channel, provider_message_id: str
) -> int | None:
    """The conversation an ingested message landed in, found by its provider id on ``channel``."""
    return (
        Interaction.objects.filter(
            workspace=workspace, channel=channel, provider_message_id=provider_message_id
        )
        .values_list("conversation_id", flat=True)
        .first()
    )


INBOX_STATUSES: tuple[str, ...] = (*ConversationStatus.values, "all")
