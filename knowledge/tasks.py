"""Background work of the knowledge base (django.tasks; the db_worker runs it)."""

from django.tasks import task

from knowledge.services import document_ingest


@task()
def document_ingest_task(document_id: int) -> str:
    """Index one document; returns its final status."""
    return document_ingest(document_id=document_id).status
