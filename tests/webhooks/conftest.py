from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def local_targets(settings: Any) -> Any:
    """Loopback receivers are allowed (as in local development); retries come at once."""
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOKS_RETRY_SCHEDULE = [0.0, 0.0, 0.0]
    settings.WEBHOOKS_RETRY_JITTER = 0.0
    return settings
