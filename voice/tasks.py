"""Background work of the voice app (django.tasks; the db_worker runs it)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from voice.services import conversations_purge

PURGE_EVERY = timedelta(days=1)


@task()
def retention_purge_task() -> str:
    """Purge what is older than KOE_RETENTION_DAYS, then come back tomorrow."""
    try:
        purge = conversations_purge(retention_days=settings.KOE_RETENTION_DAYS)
    finally:
        # Tomorrow's run is queued whatever happens today: one failure must not end them.
        if settings.KOE_RETENTION_DAYS > 0:
            retention_purge_task.using(run_after=timezone.now() + PURGE_EVERY).enqueue()
    if purge is None:
        return "retention is off"
    return f"purged {purge.conversations} conversations ({purge.records} records)"
