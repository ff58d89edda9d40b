"""The README's API session stays true: its Python block runs against a live server, and its curl lines
encode the + of a phone number (the first curl once returned an empty list)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from engagement.models import Interaction
from engagement.services.tenancy import api_key_create
from tests import factories

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text()
    return text[text.index("## REST API") : text.index("## Configuration")]


@pytest.mark.django_db(transaction=True)
def test_readme_python_session_runs_against_a_live_server(live_server: Any, monkeypatch: Any) -> None:
    workspace = factories.workspace_create()
    factories.channel_create(workspace, "sms")
    _, secret = api_key_create(workspace=workspace, name="readme")
    block = re.search(r"```python\n(.*?)```", _section(), re.S)
    assert block is not None
    monkeypatch.setitem(os.environ, "KEY", secret)
    monkeypatch.setitem(os.environ, "API", f"{live_server.url}/api/v1")
    exec(compile(block.group(1), "README.md", "exec"), {})  # noqa: S102 - our own README, on purpose
    sent = Interaction.objects.get(workspace=workspace)
    assert sent.body == "Your order shipped"


def test_readme_curls_encode_the_plus() -> None:
    curls = [line for line in _section().splitlines() if "curl" in line or "identity" in line]
    for line in curls:
        if "identity=+" in line:
            assert "--data-urlencode" in line, line
    assert any('--data-urlencode "identity=+15005550142"' in line for line in curls)


def test_readme_session_keys_and_numbers_are_its_own() -> None:
    """The curl and Python sessions can run one after the other against the demo: each has its own
    Idempotency-Keys (a key reused with another body is a 422) and numbers that are no demo customer's."""
    from engagement.services import demo

    section = _section()
    keys = re.findall(r"Idempotency-Key[\"']?: ?[\"']?([\w-]+)", section)
    assert len(keys) == len(set(keys)) == 4, keys
    numbers = set(re.findall(r"\+1500555\d{4}", section))
    seeded = set(re.findall(r"\+1500555\d{4}", Path(demo.__file__).read_text()))
    assert numbers
    assert not numbers & seeded, numbers & seeded
