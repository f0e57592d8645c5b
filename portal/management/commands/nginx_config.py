from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.nginx import nginx_site


class Command(BaseCommand):
    help = (
        "Print the nginx configuration (inside its http block) that puts Koe's web processes "
        "behind one address; add TLS to the server block as your site requires."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--upstream",
            action="append",
            required=True,
            help="host:port of a Koe web process (repeat for each)",
        )
        parser.add_argument("--listen", default="80", help="nginx's listen directive")
        parser.add_argument("--server-name", default="_")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(
            nginx_site(
                listen=options["listen"],
                upstreams=options["upstream"],
                server_name=options["server_name"],
            )
        )
