from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import demo_users_create


class Command(BaseCommand):
    help = "Create the demo users (one per role, one with all roles) and print their passwords."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-enabled",
            action="store_true",
            help="Skip quietly (exit 0) instead of failing where demo users are not allowed.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION or not settings.KOE_LOCAL_ACCOUNTS:
            reason = (
                "Demo users with known passwords exist only in development with local accounts "
                "(KOE_ENV=development, KOE_LOCAL_ACCOUNTS not false)."
            )
            if options["if_enabled"]:
                self.stdout.write(f"No demo users: {reason}")
                return
            raise CommandError(reason)
        users = demo_users_create()
        self.stdout.write("Demo users (development only):")
        self.stdout.write(f"  {'username':<10} {'password':<16} roles")
        for demo in users:
            roles = ", ".join(demo.roles) + (" (+ superuser)" if demo.superuser else "")
            self.stdout.write(f"  {demo.username:<10} {demo.password:<16} {roles}")
