from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.services import demo_users_create


class Command(BaseCommand):
    help = "Create the demo users (one per role, one with all roles) and print their passwords."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION or not settings.KOE_LOCAL_ACCOUNTS:
            raise CommandError(
                "Demo users with known passwords exist only in development (KOE_ENV=development)."
            )
        users = demo_users_create()
        self.stdout.write("Demo users (development only):")
        self.stdout.write(f"  {'username':<10} {'password':<16} roles")
        for demo in users:
            roles = ", ".join(demo.roles) + (" (+ superuser)" if demo.superuser else "")
            self.stdout.write(f"  {demo.username:<10} {demo.password:<16} {roles}")
