from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import user_superuser_grant


class Command(BaseCommand):
    help = (
        "Make an existing user (e.g. one who signed in with Entra ID once) a superuser. "
        "In production there are no local passwords, so this is how the first administrator "
        "is made."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("who", help="username or e-mail address of an existing user")
        parser.add_argument("--revoke", action="store_true", help="take superuser away instead")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = user_superuser_grant(identifier=options["who"], grant=not options["revoke"])
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        state = "is now" if user.is_superuser else "is no longer"
        self.stdout.write(f"{user.get_username()} <{user.email}> {state} a superuser.")
