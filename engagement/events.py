"""Domain events and their one dispatcher.

Services publish with :func:`publish_on_commit`; nothing is dispatched unless the transaction commits.
The listeners are listed here, in one place, so every side effect of an event is visible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

MESSAGE_RECEIVED = "message.received"
CONVERSATION_OPENED = "conversation.opened"
INTERACTION_UPDATED = "interaction.updated"
CONVERSATION_UPDATED = "conversation.updated"
# An inbound call ended without an agent answering; a caller left a voicemail.
CALL_MISSED = "call.missed"
VOICEMAIL_RECEIVED = "voicemail.received"


@dataclass(frozen=True)
class DomainEvent:
    name: str
    workspace_id: int
    interaction_id: int | None = None
    conversation_id: int | None = None
    customer_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Listener = Callable[[DomainEvent], None]


def _automation_listener(event: DomainEvent) -> None:
    from engagement.services.automation import AUTOMATION_TRIGGERS
    from engagement.tasks import run_automations

    if event.name in AUTOMATION_TRIGGERS:
        run_automations.delay(event.as_dict())


def _realtime_listener(event: DomainEvent) -> None:
    from engagement.realtime import push_to_workspace

    push_to_workspace(event)


LISTENERS: list[Listener] = [_automation_listener, _realtime_listener]


def dispatch(event: DomainEvent) -> None:
    """Hand ``event`` to every listener. One failing listener never stops the others."""
    for listener in LISTENERS:
        try:
            listener(event)
        except Exception:
            logger.exception("listener %s failed for %s", listener.__name__, event.name)


def publish_on_commit(event: DomainEvent) -> None:
    transaction.on_commit(lambda: dispatch(event))
