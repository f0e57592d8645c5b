from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.models import AccessLogEntry
from audit.selectors import access_log_chain_problems
from voice.models import Conversation, ConversationEvent
from voice.selectors import conversation_chain_problems


class Command(BaseCommand):
    help = (
        "Check the hash chain of every conversation's audit records: report any edited, "
        "missing or reordered row. Exits with status 1 when something is wrong."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = 0
        for problem in conversation_chain_problems():
            problems += 1
            self.stdout.write(str(problem))
        for line in access_log_chain_problems():
            problems += 1
            self.stdout.write(line)
        conversations = Conversation.objects.count()
        events = ConversationEvent.objects.count()
        entries = AccessLogEntry.objects.count()
        summary = (
            f"checked {conversations} conversations, {events} records, "
            f"{entries} access-log entries: "
        )
        if problems:
            raise CommandError(summary + f"{problems} problem(s)")
        self.stdout.write(summary + "the chains are intact")
