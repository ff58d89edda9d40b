"""Re-encrypt every channel's secrets under the first key of CREDENTIALS_KEYS (after adding a new key
in front); the old key can be dropped once this has run."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from engagement.models import Channel


class Command(BaseCommand):
    help = "Re-encrypt channel credentials with the first key of CREDENTIALS_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            # Reading decrypts with any key of the ring; saving encrypts with the first.
            for channel in Channel.objects.select_for_update().only("id", "config"):
                channel.save(update_fields=["config"])
                count += 1
        self.stdout.write(f"re-encrypted the credentials of {count} channel(s)")
