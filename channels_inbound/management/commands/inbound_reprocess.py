"""manage.py inbound_reprocess [--id N ...] [--all] [--workspace SLUG]: apply kept provider requests again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_inbound.intake import (
    inbound_request_list_unprocessed,
    inbound_request_reprocess,
    inbound_request_reprocess_all,
)
from engagement.errors import NotFound
from engagement.models import Workspace


class Command(BaseCommand):
    help = (
        "Run authentic provider requests that were kept unprocessed (see the console's Unprocessed events "
        "page) through their parser again and apply them. Events applied meanwhile are not applied twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", type=int, action="append", dest="ids", default=[], help="a kept request")
        parser.add_argument("--all", action="store_true", help="every unprocessed request, oldest first")
        parser.add_argument("--workspace", default="", help="limit --all to the workspace with this slug")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = options["ids"]
        if not ids and not options["all"]:
            pending = inbound_request_list_unprocessed().count()
            raise CommandError(f"give --id N or --all ({pending} unprocessed)")
        workspace = None
        if options["workspace"]:
            workspace = Workspace.objects.filter(slug=options["workspace"]).first()
            if workspace is None:
                raise CommandError(f"no workspace {options['workspace']!r}")
        failing = 0
        for request_id in ids:
            try:
                row = inbound_request_reprocess(request_id=request_id, workspace=workspace)
            except NotFound as exc:
                raise CommandError(str(exc)) from exc
            if row.processed_at is not None:
                self.stdout.write(f"{row.pk}: processed")
            else:
                failing += 1
                self.stdout.write(f"{row.pk}: failed again ({row.stage}): {row.last_error}")
        if options["all"]:
            applied, still = inbound_request_reprocess_all(workspace=workspace)
            failing += still
            self.stdout.write(f"{applied} processed, {still} failed again")
        if failing:
            raise CommandError(f"{failing} request(s) still fail")
