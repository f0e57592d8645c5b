from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from knowledge.services import documents_recover_stalled
from knowledge.tasks import documents_recover_task
from portal.periodic import periodic_task_start


class Command(BaseCommand):
    help = (
        "Queue again (or, after three tries, fail) documents whose indexing stopped because "
        "its worker died; with --schedule, make sure the worker does this every five minutes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--schedule", action="store_true", help="queue the periodic check")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["schedule"]:
            periodic_task_start(documents_recover_task)
            self.stdout.write("the check for stalled documents is queued")
            return
        recovery = documents_recover_stalled()
        self.stdout.write(
            f"queued again: {len(recovery.requeued)}; marked failed: {len(recovery.failed)}"
        )
