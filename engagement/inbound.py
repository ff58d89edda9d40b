"""The normalized inbound contract: what every provider adapter produces and the core applies.

It lives in the core, as anymail keeps ``AnymailTrackingEvent`` beside its signals: adapters import it,
never each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from customers.identifiers import Identifier
from engagement.sanitize import json_clean, text_clean


@dataclass(frozen=True)
class InboundAttachment:
    """A file that came with a message (email attachment or inline image)."""

    filename: str
    content_type: str
    content: bytes
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True)
class ThreadHints:
    """What an email says about the thread it belongs to (see engagement/services/email_threading.py)."""

    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    # Every address the message was sent to (To, Cc, envelope): a reply+<token>@ address is among them.
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class InboundMessage:
    """A customer wrote to us on some channel."""

    provider_event_id: str
    sender: Identifier
    body: str
    occurred_at: datetime
    sender_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    subject: str = ""
    attachments: tuple[InboundAttachment, ...] = ()
    # Set for email: the conversation is found by reply address and Message-ID references, not by sender.
    thread: ThreadHints | None = None
    # Auto-replies and bounces are recorded but never trigger automations.
    is_auto_reply: bool = False

    event_type = "message"


@dataclass(frozen=True)
class DeliveryStatus:
    """The provider reports progress of a message we sent. ``status`` is in our vocabulary."""

    provider_event_id: str
    provider_message_id: str
    status: str
    occurred_at: datetime
    interaction_id: int | None = None
    error_code: str = ""
    error_message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    # Optional, for providers that report more than delivery (email): "open" or "click", with details.
    engagement: str = ""
    engagement_details: dict[str, Any] = field(default_factory=dict)
    # A consent source (customers.models.ConsentSource) when the event is an opt-out, with its purpose
    # ("" = every purpose on the channel).
    opt_out_source: str = ""
    opt_out_purpose: str = ""
    recipient: str = ""

    event_type = "status"


@dataclass(frozen=True)
class CallEvent:
    """Something happened on a phone call. ``action`` says what:

    - ``started``: an inbound call reached us (``caller`` is the customer);
    - ``status``: a call status report for the customer's call (``leg=""``), an agent's leg ringing
      the on-duty phones (``leg="agent"``, ``agent_address`` = their number) or the customer's leg of
      click-to-call (``leg="customer"``); ``status`` is one of queued, initiated, ringing, in-progress,
      completed, busy, no-answer, failed, canceled;
    - ``voicemail_left``: the caller finished recording a message;
    - ``recording``: a recording is ready (``recording_url``, ``recording_status``);
    - ``transcription``: a recording's transcript is ready (``transcript``, ``transcription_status``).

    ``call_id`` is always the customer's call (for a leg: its parent call).
    """

    provider_event_id: str
    action: str
    call_id: str
    occurred_at: datetime
    caller: Identifier | None = None
    status: str = ""
    leg: str = ""
    leg_call_id: str = ""
    interaction_id: int | None = None
    duration_seconds: int | None = None
    agent_address: str = ""
    recording_id: str = ""
    recording_url: str = ""
    recording_status: str = ""
    recording_content_type: str = "audio/mpeg"
    transcription_id: str = ""
    transcription_status: str = ""
    transcript: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    event_type = "call"


InboundEvent = InboundMessage | DeliveryStatus | CallEvent


# ---------------------------------------------------------------- the ingestion port
# The core hands normalized events to ingestion (stored under their provider id, then applied to the
# timeline) through this port: ingestion itself lives in ``channels_inbound``, which the core never names.
# The implementation is registered at start-up in ``config/listeners.py``. Used by the console's
# simulator; provider webhooks call ingestion directly.

Ingestor = Callable[..., Any]
_INGESTOR: list[Ingestor] = []


def inbound_ingestor_register(ingestor: Ingestor) -> None:
    _INGESTOR[:] = [ingestor]


def inbound_events_ingest(*, channel: Any, events: Sequence[InboundEvent]) -> None:
    """Store and apply ``events`` for ``channel`` through the registered ingestion (one transaction).

    Raises whatever applying raises (e.g. ``InvalidIdentifier``); RuntimeError if nothing registered."""
    if not _INGESTOR:
        raise RuntimeError("no inbound ingestion registered (config.apps.WiringConfig)")
    _INGESTOR[0](channel=channel, events=list(events))


def _value_clean(value: Any) -> Any:
    if isinstance(value, str):
        return text_clean(value)
    if isinstance(value, (dict, list)):
        return json_clean(value)
    if isinstance(value, tuple):
        items = tuple(_value_clean(v) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return inbound_event_clean(value)
    return value


def inbound_event_clean[E](event: E) -> E:
    """``event`` with every text a provider sent made storable: NUL characters removed and lone
    surrogates replaced (``engagement/sanitize.py``), in every field, nested value and raw payload.

    Authentic provider events are cleaned, never refused: a signed Twilio field or a SendGrid event
    holding ``\\u0000`` is applied (PostgreSQL text and jsonb cannot hold NUL), so the provider's
    redelivery does not fail the same way forever. Returns ``event`` itself when nothing changed."""
    assert dataclasses.is_dataclass(event)
    assert not isinstance(event, type)
    changes = {}
    for f in dataclasses.fields(event):
        old = getattr(event, f.name)
        new = _value_clean(old)
        if new is not old:
            changes[f.name] = new
    return dataclasses.replace(event, **changes) if changes else event
