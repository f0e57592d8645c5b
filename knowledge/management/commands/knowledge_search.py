from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.selectors import chunk_search


class Command(BaseCommand):
    help = "Search the knowledge base as a given user would (their access applies)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username whose access applies")
        parser.add_argument("-k", type=int, default=5, help="number of passages")
        parser.add_argument("question")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=options["user"])
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user {options['user']!r}") from exc
        hits = chunk_search(user=user, query=options["question"], k=options["k"])
        if not hits:
            self.stdout.write("no passages found")
        for rank, hit in enumerate(hits, start=1):
            where = f" ({hit.location})" if hit.location else ""
            self.stdout.write(f"{rank}. [{hit.score:.4f}] {hit.title}{where}")
            self.stdout.write(f"   {hit.text[:300]}")
