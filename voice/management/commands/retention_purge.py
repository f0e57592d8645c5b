from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from portal.periodic import periodic_task_start
from voice.services import conversations_purge
from voice.tasks import retention_purge_task


class Command(BaseCommand):
    help = (
        "Delete conversations older than KOE_RETENTION_DAYS now and print what went; with "
        "--schedule, make sure the daily purge task is queued for the worker instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--schedule", action="store_true", help="queue the daily purge")

    def handle(self, *args: Any, **options: Any) -> None:
        days = settings.KOE_RETENTION_DAYS
        if days <= 0:
            self.stdout.write("KOE_RETENTION_DAYS is 0: conversations are kept; nothing to do")
            return
        if options["schedule"]:
            periodic_task_start(retention_purge_task)
            self.stdout.write("the daily retention purge is queued")
            return
        purge = conversations_purge(retention_days=days)
        assert purge is not None
        self.stdout.write(
            f"purged {purge.conversations} conversations and {purge.records} records "
            f"started before {purge.cutoff:%Y-%m-%d %H:%M %Z} ({days} days)"
        )
