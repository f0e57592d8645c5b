"""Background work of the knowledge base (django.tasks; the db_worker runs it)."""

from datetime import timedelta

from django.tasks import task
from django.utils import timezone

from knowledge.services import document_ingest, documents_recover_stalled

RECOVER_EVERY = timedelta(minutes=5)


@task()
def document_ingest_task(document_id: int) -> str:
    """Index one document; returns its final status."""
    return document_ingest(document_id=document_id).status


@task()
def documents_recover_task() -> str:
    """Queue again (or fail) documents whose worker died while indexing them; then come back
    in five minutes."""
    try:
        recovery = documents_recover_stalled()
    finally:
        # The next round is queued whatever happens in this one.
        documents_recover_task.using(run_after=timezone.now() + RECOVER_EVERY).enqueue()
    return f"queued again: {recovery.requeued}; failed: {recovery.failed}"
