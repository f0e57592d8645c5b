from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Q

from knowledge.embeddings import embedder_default
from knowledge.models import Document
from knowledge.services import document_ingest, document_reindex
from knowledge.vector_index import vector_indexes_prune


class Command(BaseCommand):
    help = (
        "Parse and embed documents again with the configured embedding model (after changing "
        "KOE_EMBEDDING_PROVIDER or KOE_EMBEDDING_MODEL, or to retry failures)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stale",
            action="store_true",
            help="only documents not yet embedded by the configured model, and failed ones",
        )
        parser.add_argument(
            "--background",
            action="store_true",
            help="queue them for the worker instead of indexing here and now",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        embedder = embedder_default()
        documents = Document.objects.order_by("pk")
        if options["stale"]:
            current = Q(
                chunks__embedding_model=embedder.model,
                chunks__embedding_dimensions=embedder.dimensions,
            )
            outdated = Document.objects.filter(chunks__isnull=False).exclude(current)
            documents = documents.filter(
                Q(pk__in=outdated.values("pk")) | ~Q(status=Document.Status.READY)
            )
        self.stdout.write(
            f"model: {embedder.model} ({embedder.dimensions} dimensions); "
            f"{documents.count()} documents"
        )
        if options["background"]:
            for document in documents:
                document_reindex(document=document)
            self.stdout.write(f"{documents.count()} queued for the worker")
            return
        counts = {"ready": 0, "failed": 0}
        for document in documents:
            document = document_ingest(document_id=document.pk, embedder=embedder)
            ok = document.status == Document.Status.READY
            counts["ready" if ok else "failed"] += 1
            detail = f"{document.chunks.count()} passages" if ok else document.error
            self.stdout.write(f"{document.status:<8} {document.title}: {detail}")
        dropped = vector_indexes_prune()
        self.stdout.write(
            f"{counts['ready']} re-indexed, {counts['failed']} failed; "
            f"{len(dropped)} unused vector indexes dropped"
        )
