"""The customer-centric console: one inbox row per customer, one thread per customer across channels.

Conversations stay per channel (email threading, calls and automation key on them, see ARCHITECTURE.md
"The agent console"); this module groups them by customer for the agent:

* :func:`inbox_rows` — one row per customer with a conversation in the asked status, newest activity
  first, with the latest *customer* message (never the bot's or an agent's), its channel, since when
  the customer waits for a person, the member's unread state and the assignee, in a fixed number of
  queries whatever the page size;
* :func:`reply_options` — every channel the customer can be written on from the thread, each allowed or
  blocked with the reason *before* the agent sends (address on file, consent for the purpose);
* :func:`thread_reply_send` — the reply on the picked channel, in the conversation that keeps that
  channel's thread (for email the customer's latest email conversation on the channel, so the
  ``In-Reply-To``/``References`` headers follow);
* :func:`customer_thread_mark_read` — the member's read marker.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from customers.consent import SendPurpose, consent_check_send_every_channel
from customers.models import Customer, Identity, IdentityKind
from engagement.models import Channel, ChannelKind, Conversation, CustomerReadMarker, Interaction, Workspace
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.models.conversations import ConversationStatus, Direction
from engagement.models.tenancy import Membership

from .messaging import SendRejected, message_send

# Channels an agent writes a message on. A voice channel is reached with click-to-call instead.
# How many of the newest interactions the catch-up check looks at for a changed status.
STATUS_LOOKBACK = 1000
REPLY_KINDS: tuple[str, ...] = (ChannelKind.SMS, ChannelKind.EMAIL, ChannelKind.WEBCHAT)


# ---------------------------------------------------------------- time zone


def member_timezone(*, membership: Membership) -> zoneinfo.ZoneInfo:
    """The zone the console shows ``membership`` times in: theirs, else the workspace's, else UTC."""
    for name in (membership.timezone, membership.workspace.timezone, "UTC"):
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
    return zoneinfo.ZoneInfo("UTC")


# ---------------------------------------------------------------- inbox


@dataclass(frozen=True)
class InboxRow:
    customer: Customer
    label: str
    conversation: Conversation  # the customer's newest conversation in the view: status, assignee, link
    last_message: Interaction | None  # the customer's newest inbound message, on any channel
    waiting_since: datetime | None  # oldest customer message no person has answered since; None: answered
    unread: bool


INBOX_VIEWS: tuple[tuple[str, str], ...] = (
    ("mine", "Mine"),
    ("unassigned", "Unassigned"),
    ("teams", "My teams"),
    ("all", "All"),
    ("mentions", "Mentions"),
)
INBOX_SORTS: tuple[tuple[str, str], ...] = (("newest", "Newest activity"), ("waiting", "Longest waiting"))


@dataclass(frozen=True)
class InboxQuery:
    """Which rows the inbox shows: a view (whose rows), a status (None: any) and filters, a sort."""

    view: str = "all"
    status: str | None = ConversationStatus.OPEN
    channel_id: int | None = None
    label_id: int | None = None
    assignee_id: int | None = None
    team_id: int | None = None
    sort: str = "newest"


def _view_q(*, view: str, user_id: int, team_ids: list[int]) -> Q:
    """The conversation filter of a view (``mentions`` is a customer filter: :func:`_mentions_exists`)."""
    if view == "mine":
        return Q(assignee_id=user_id)
    if view == "unassigned":
        return Q(assignee__isnull=True)
    if view == "teams":
        return Q(team_id__in=team_ids)
    return Q()


def _mentions_exists(*, user_id: int, customer_ref: Any) -> Exists:
    from engagement.models import Note

    return Exists(Note.objects.filter(customer_id=customer_ref, mentions=user_id))


def inbox_customers(
    *,
    workspace: Workspace,
    status: str | None,
    query: InboxQuery | None = None,
    user_id: int = 0,
    team_ids: list[int] | None = None,
) -> QuerySet[Customer]:
    """Customers with a conversation matching the view, status (None: any) and filters of ``query``,
    annotated with ``inbox_activity`` and ``inbox_conversation_id`` (their newest such conversation)
    and, for the "waiting" sort, ``inbox_waiting`` (the oldest customer message no person answered
    since). Sorted by newest activity, or longest waiting first (answered ones last). Paginate this."""
    query = query or InboxQuery(status=status)
    conversations = Conversation.objects.filter(workspace=workspace, customer=OuterRef("pk"))
    if status is not None:
        conversations = conversations.filter(status=status)
    conversations = conversations.filter(_view_q(view=query.view, user_id=user_id, team_ids=team_ids or []))
    if query.channel_id is not None:
        conversations = conversations.filter(channel_id=query.channel_id)
    if query.label_id is not None:
        conversations = conversations.filter(labels=query.label_id)
    if query.assignee_id is not None:
        conversations = conversations.filter(assignee_id=query.assignee_id)
    if query.team_id is not None:
        conversations = conversations.filter(team_id=query.team_id)
    newest = conversations.order_by("-last_activity_at", "-id")
    customers = Customer.objects.filter(workspace=workspace).filter(Exists(conversations))
    if query.view == "mentions":
        customers = customers.filter(_mentions_exists(user_id=user_id, customer_ref=OuterRef("pk")))
    customers = customers.annotate(
        inbox_activity=Subquery(newest.values("last_activity_at")[:1]),
        inbox_conversation_id=Subquery(newest.values("id")[:1]),
    )
    if query.sort == "waiting":
        last_human = (
            Interaction.objects.filter(
                workspace=workspace,
                customer_id=OuterRef(OuterRef("pk")),
                direction=Direction.OUTBOUND,
                author__isnull=False,
            )
            .order_by("-created_at")
            .values("created_at")[:1]
        )
        oldest_unanswered = (
            Interaction.objects.filter(
                workspace=workspace, customer_id=OuterRef("pk"), direction=Direction.INBOUND
            )
            .filter(Q(created_at__gt=Subquery(last_human)) | Q(~Exists(last_human)))
            .order_by("created_at")
            .values("created_at")[:1]
        )
        return customers.annotate(inbox_waiting=Subquery(oldest_unanswered)).order_by(
            F("inbox_waiting").asc(nulls_last=True), "-inbox_activity", "-pk"
        )
    return customers.order_by("-inbox_activity", "-pk")


@dataclass(frozen=True)
class InboxFilterOptions:
    channels: list[Channel]
    labels: list[Any]
    members: list[Membership]
    teams: list[Any]


def inbox_filter_options(*, workspace: Workspace) -> InboxFilterOptions:
    """What the inbox's filters and bulk actions offer: channels, labels, members, teams (4 queries)."""
    from engagement.models import Label, Team

    return InboxFilterOptions(
        channels=list(Channel.objects.filter(workspace=workspace).order_by("kind", "name")),
        labels=list(Label.objects.filter(workspace=workspace).order_by("name")),
        members=list(
            Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__username")
        ),
        teams=list(Team.objects.filter(workspace=workspace).order_by("name")),
    )


def inbox_view_counts(
    *, workspace: Workspace, status: str | None, user_id: int, team_ids: list[int]
) -> dict[str, int]:
    """Customers per view in ``status`` (None: any): ``{"mine": n, "unassigned": n, …}``. One query
    over the workspace's conversations (the inbox index), whatever the number of views."""
    conversations = Conversation.objects.filter(workspace=workspace)
    if status is not None:
        conversations = conversations.filter(status=status)

    def count(q: Q | Exists) -> Count:
        return Count("customer_id", distinct=True, filter=q)

    return conversations.aggregate(
        mine=count(_view_q(view="mine", user_id=user_id, team_ids=team_ids)),
        unassigned=count(_view_q(view="unassigned", user_id=user_id, team_ids=team_ids)),
        teams=count(_view_q(view="teams", user_id=user_id, team_ids=team_ids)),
        all=Count("customer_id", distinct=True),
        mentions=count(Q(_mentions_exists(user_id=user_id, customer_ref=OuterRef("customer_id")))),
    )


def customer_label(customer: Customer, identities: list[Identity]) -> str:
    """What the console calls a customer: the name, else a phone, else an email, else the id."""
    if customer.display_name:
        return customer.display_name
    for kind in (IdentityKind.PHONE, IdentityKind.EMAIL):
        values = sorted((i for i in identities if i.kind == kind), key=lambda i: i.last_seen_at, reverse=True)
        if values:
            return values[0].value
    return f"Customer {customer.pk}"


def inbox_rows(*, workspace: Workspace, user_id: int, customers: list[Customer]) -> list[InboxRow]:
    """The rows of one page of :func:`inbox_customers`. Six queries whatever the page size."""
    if not customers:
        return []
    ids = [c.pk for c in customers]
    conversations = {
        c.pk: c
        for c in Conversation.objects.filter(
            workspace=workspace,
            pk__in=[c.inbox_conversation_id for c in customers],  # type: ignore[attr-defined]
        )
        .select_related("channel", "assignee", "team")
        .prefetch_related("labels")
    }
    last_inbound = {
        i.customer_id: i
        for i in Interaction.objects.filter(
            workspace=workspace, customer_id__in=ids, direction=Direction.INBOUND
        )
        .select_related("channel")
        .order_by("customer_id", "-created_at", "-id")
        .distinct("customer_id")
    }
    last_human = (
        Interaction.objects.filter(
            workspace=workspace,
            customer_id=OuterRef("customer_id"),
            direction=Direction.OUTBOUND,
            author__isnull=False,
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    waiting = dict(
        Interaction.objects.filter(workspace=workspace, customer_id__in=ids, direction=Direction.INBOUND)
        .annotate(answered_at=Subquery(last_human))
        .filter(Q(answered_at__isnull=True) | Q(created_at__gt=F("answered_at")))
        .values("customer_id")
        .annotate(since=Min("created_at"))
        .values_list("customer_id", "since")
    )
    read = dict(
        CustomerReadMarker.objects.filter(user_id=user_id, customer_id__in=ids).values_list(
            "customer_id", "interaction_id"
        )
    )
    identities: dict[int, list[Identity]] = {}
    for identity in Identity.objects.filter(
        workspace=workspace, customer_id__in=ids, kind__in=[IdentityKind.PHONE, IdentityKind.EMAIL]
    ):
        identities.setdefault(identity.customer_id, []).append(identity)
    rows = []
    for customer in customers:
        message = last_inbound.get(customer.pk)
        rows.append(
            InboxRow(
                customer=customer,
                label=customer_label(customer, identities.get(customer.pk, [])),
                conversation=conversations[customer.inbox_conversation_id],  # type: ignore[attr-defined]
                last_message=message,
                waiting_since=waiting.get(customer.pk),
                unread=message is not None and message.pk > read.get(customer.pk, 0),
            )
        )
    return rows


def customer_thread_mark_read(*, workspace: Workspace, user_id: int, customer: Customer) -> None:
    """The member has seen every inbound message of the customer so far. One statement (an upsert
    whose marker only moves forward), so opening a thread costs the same query whatever happened."""
    markers = CustomerReadMarker._meta.db_table
    interactions = Interaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {markers} (workspace_id, user_id, customer_id, interaction_id, read_at)
            SELECT %s, %s, %s, MAX(id), NOW() FROM {interactions}
             WHERE workspace_id = %s AND customer_id = %s AND direction = %s
            HAVING MAX(id) IS NOT NULL
            ON CONFLICT (user_id, customer_id) DO UPDATE
               SET interaction_id = EXCLUDED.interaction_id, read_at = EXCLUDED.read_at
             WHERE {markers}.interaction_id < EXCLUDED.interaction_id
            """,  # noqa: S608 - table names from the models' metadata, values as parameters
            [workspace.pk, user_id, customer.pk, workspace.pk, customer.pk, Direction.INBOUND.value],
        )


# ---------------------------------------------------------------- the reply box's channel picker


@dataclass(frozen=True)
class ReplyOption:
    channel: Channel
    address: str  # the customer's address it goes to ("" when there is none)
    allowed: bool
    reason: str  # why not, for the agent, when not allowed

    @property
    def label(self) -> str:
        to = f" to {self.address}" if self.address else ""
        return f"{self.channel.get_kind_display()} · {self.channel.name}{to}"


def reply_options(
    *,
    workspace: Workspace,
    customer: Customer,
    identities: list[Identity],
    purpose: str = SendPurpose.TRANSACTIONAL,
) -> list[ReplyOption]:
    """Every active SMS, email and webchat channel of the workspace, each with the customer's newest
    address of the right kind and whether a ``purpose`` message may go there now (the same consent
    rule ``message_send`` enforces: ``customers.consent``). Two queries."""
    decisions = consent_check_send_every_channel(customer=customer, purpose=purpose)
    newest: dict[str, Identity] = {}
    for identity in sorted(identities, key=lambda i: (i.last_seen_at, i.pk)):
        newest[identity.kind] = identity
    options = []
    channels = Channel.objects.filter(workspace=workspace, is_active=True, kind__in=REPLY_KINDS).order_by(
        "kind", "name", "pk"
    )
    for channel in channels:
        identity_kind = CHANNEL_IDENTITY_KIND[channel.kind]
        found = newest.get(identity_kind)
        decision = decisions.get(channel.kind)
        if found is None:
            what = {"phone": "phone number", "email": "email address"}.get(identity_kind, "chat visitor")
            reason = f"no {what} on file" + (
                "" if identity_kind == "webchat" else " (add one in the customer panel)"
            )
            options.append(ReplyOption(channel, "", False, reason))
        elif decision is not None and not decision.allowed:
            options.append(ReplyOption(channel, found.value, False, decision.detail))
        else:
            options.append(ReplyOption(channel, found.value, True, ""))
    return options


def reply_option_default(
    *, options: list[ReplyOption], last_inbound: Interaction | None
) -> ReplyOption | None:
    """The channel the customer last wrote on when it is allowed, else the first allowed one."""
    allowed = [o for o in options if o.allowed]
    if last_inbound is not None and last_inbound.channel_id is not None:
        for option in allowed:
            if option.channel.pk == last_inbound.channel_id:
                return option
        for option in allowed:
            if last_inbound.channel is not None and option.channel.kind == last_inbound.channel.kind:
                return option
    return allowed[0] if allowed else None


def reply_conversation(*, customer: Customer, channel: Channel) -> Conversation | None:
    """The conversation a reply on ``channel`` joins: for email the customer's latest conversation on
    the channel (whatever its status, so the reply threads under their last mail); otherwise None, and
    ``message_send`` takes the newest unresolved one or opens one."""
    if channel.kind != ChannelKind.EMAIL:
        return None
    return (
        Conversation.objects.filter(workspace_id=channel.workspace_id, customer=customer, channel=channel)
        .order_by("-last_activity_at", "-id")
        .first()
    )


def thread_reply_send(
    *,
    workspace: Workspace,
    customer: Customer,
    channel_id: int,
    body: str,
    author: AbstractBaseUser | None,
    options: list[ReplyOption],
    subject: str = "",
) -> Interaction:
    """Send the agent's reply on the picked channel. SendRejected (shown on the form, nothing stored)
    when the channel is not one of ``options`` or is blocked for the reason the picker showed.
    An unassigned thread becomes the replying agent's (``teamwork.thread_self_assign_on_reply``)."""
    option = next((o for o in options if o.channel.pk == channel_id), None)
    if option is None:
        channel = Channel.objects.filter(workspace=workspace, pk=channel_id).first()
        if channel is not None and not channel.is_active:
            raise SendRejected(f"channel {channel.name!r} is not active", field="channel")
        raise SendRejected("pick a channel to reply on", field="channel")
    if not option.allowed:
        raise SendRejected(f"cannot send on {option.channel.name}: {option.reason}", field="channel")
    conversation = reply_conversation(customer=customer, channel=option.channel)
    if conversation is None and option.channel.kind == ChannelKind.EMAIL and subject:
        from .conversations import conversation_open

        conversation = conversation_open(
            customer=customer, channel=option.channel, at=timezone.now(), subject=subject
        )
    interaction, _ = message_send(
        workspace=workspace,
        channel=option.channel,
        customer=customer,
        body=body,
        to_address=option.address,
        conversation=conversation,
        author=author,
    )
    if author is not None and author.pk is not None:
        from .teamwork import thread_self_assign_on_reply

        thread_self_assign_on_reply(workspace=workspace, customer_id=customer.pk, user_id=int(author.pk))
    return interaction


def thread_high_water_mark(*, workspace: Workspace) -> str:
    """``"<newest interaction id>:<now in ms>"``: rendered into a console page so its websocket can
    ask, right after it connects, whether anything happened since the page was read
    (:func:`thread_changed_since`)."""
    newest = (
        Interaction.objects.filter(workspace=workspace).order_by("-id").values_list("id", flat=True).first()
    )
    return f"{newest or 0}:{int(timezone.now().timestamp() * 1000)}"


def thread_changed_since(*, workspace_id: int, mark: Any) -> bool:
    """Whether an interaction was added or changed status, a conversation moved or was changed by a
    person (assignee, team, labels, status: ``updated_at``), or a note was written, in the workspace
    after the page that carries ``mark`` was rendered. An unreadable mark counts as changed."""
    from engagement.models import Note

    try:
        newest_id, at_ms = (int(x) for x in str(mark).split(":", 1))
        at = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return True
    interactions = Interaction.objects.filter(workspace_id=workspace_id)
    return (
        interactions.filter(pk__gt=newest_id).exists()
        # Status changes (delivered, failed…) happen to recent messages: look at the newest ones only,
        # a primary-key range, so the check stays cheap on a large timeline.
        or interactions.filter(pk__gt=newest_id - STATUS_LOOKBACK, status_changed_at__gt=at).exists()
        or Conversation.objects.filter(workspace_id=workspace_id, last_activity_at__gt=at).exists()
        or Conversation.objects.filter(workspace_id=workspace_id, updated_at__gt=at).exists()
        or Note.objects.filter(workspace_id=workspace_id, created_at__gt=at).exists()
    )


INBOX_STATUSES: tuple[str, ...] = (*ConversationStatus.values, "all")


def timeline_with_notes(*, interactions: list[Interaction], notes: list[Any]) -> list[Any]:
    """The thread's items in time order: interactions and private notes (notes older than the oldest
    interaction shown are left out with it, unless there is no interaction at all)."""
    if interactions:
        oldest = interactions[0].created_at
        notes = [n for n in notes if n.created_at >= oldest]
    return sorted(
        [*interactions, *notes], key=lambda item: (item.created_at, bool(getattr(item, "is_note", False)))
    )


def thread_team_context(*, workspace: Workspace, customer: Customer) -> dict[str, Any]:
    """The thread page's team tools: its conversations' assignee, team and labels, and what the
    assign and label controls offer (members, teams, labels). Four queries."""
    from engagement.models import Label, Team

    unresolved = list(
        Conversation.objects.filter(workspace=workspace, customer=customer)
        .exclude(status=ConversationStatus.RESOLVED)
        .select_related("assignee", "team")
        .prefetch_related("labels")
        .order_by("-last_activity_at", "-id")
    )
    labels = sorted({label.name for c in unresolved for label in c.labels.all()})
    head = unresolved[0] if unresolved else None
    return {
        "thread_assignee": head.assignee if head else None,
        "thread_team": head.team if head else None,
        "thread_labels": labels,
        "thread_open": bool(unresolved),
        "thread_snoozed": head is not None
        and all(c.status == ConversationStatus.SNOOZED for c in unresolved),
        "thread_snoozed_until": head.snoozed_until if head else None,
        "team_members": list(
            Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__username")
        ),
        "team_choices": list(Team.objects.filter(workspace=workspace).order_by("name")),
        "label_choices": list(
            Label.objects.filter(workspace=workspace).values_list("name", flat=True).order_by("name")
        ),
    }
