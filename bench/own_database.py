"""Django for a benchmark that fills a database: always its own, on the embedded server."""

from __future__ import annotations

import os
import sys


def django_in_own_database(name: str) -> None:
    """Set Django up on the embedded database `name`; refuse to run against DATABASE_URL.

    The benchmarks delete every document of their database, so a shared one must never be it.
    """
    if os.environ.get("DATABASE_URL"):
        sys.exit("unset DATABASE_URL: this benchmark works only in its own embedded database")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["KOE_DB_NAME"] = name
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
