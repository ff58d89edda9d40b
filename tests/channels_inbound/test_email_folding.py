"""Quoted history and signatures are folded away for display but kept (email_text_split keeps every line)."""

from __future__ import annotations

import pytest

from engagement.services.email_threading import email_text_split


@pytest.mark.parametrize(
    ("text", "shown", "folded_starts"),
    [
        ("Thanks, that works.\n\n-- \nGrace Hopper\nCTO, Example\n", "Thanks, that works.\n", "-- \n"),
        (
            "Yes please.\n\nOn Mon, 3 Nov 2026, Support <s@x.example> wrote:\n> Shall we ship it?\n",
            "Yes please.\n",
            "On Mon",
        ),
        ("> quoted only\n", "> quoted only\n", ""),
        ("No quote, no signature.\n", "No quote, no signature.\n", ""),
    ],
)
def test_signature_and_quoted_history_are_folded_but_kept(text, shown, folded_starts):
    head, folded = email_text_split(text)
    assert head == shown
    assert folded.startswith(folded_starts)
    # Nothing is lost: every line of the mail is in one part or the other.
    assert all(line in head + folded for line in text.splitlines())
