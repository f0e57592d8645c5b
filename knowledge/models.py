"""Documents that knowledge admins upload and the passages Koe retrieves from them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.utils import timezone
from pgvector.django import HalfVectorField

# Longer than the slowest batch can take, retries with the remote embedding services included.
STALLED_AFTER = timedelta(minutes=15)
MAX_INGEST_ATTEMPTS = 3


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        PROCESSING = "processing", "processing"
        READY = "ready", "ready"
        FAILED = "failed", "failed"

    class Kind(models.TextChoices):
        PDF = "pdf", "PDF"
        DOCX = "docx", "Word"
        MARKDOWN = "markdown", "Markdown"
        HTML = "html", "HTML"
        TEXT = "text", "plain text"

    # The id that leaves the server (links to passages): opaque, not the row number.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(max_length=300)
    file = models.FileField(upload_to="documents/%Y/%m/")
    original_name = models.CharField(max_length=255)
    # The file of the version whose passages are searchable, while a newer upload waits to be
    # indexed: removed only once the newer one is, so a failed new version loses nothing.
    superseded_file = models.CharField(max_length=255, blank=True, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # ISO-639-1 of the text ("ja", "en"), empty when unknown.
    language = models.CharField(max_length=16, blank=True)
    # SHA-256 of the file: the same file uploaded twice is recognised.
    checksum = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField()
    # Raised by every new upload of the document; chunks carry the version they came from.
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # Ingestions of this version begun so far: a worker that died midway leaves the document
    # `processing`; knowledge_recover queues it again, up to MAX_INGEST_ATTEMPTS, then fails it.
    ingest_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who may read it: members of any of these groups. Empty means every employee.
    allowed_groups = models.ManyToManyField(Group, blank=True, related_name="documents")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="document_progress_at_most_100"
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def stalled(self) -> bool:
        """Processing without progress for so long that its worker must have died (every
        batch of passages moves `updated_at`)."""
        return (
            self.status == self.Status.PROCESSING
            and timezone.now() - self.updated_at > STALLED_AFTER
        )


class Chunk(models.Model):
    """One passage, with the embedding of the model that made it.

    The embedding column has no fixed dimension, so models of any size share it; each model
    gets its own partial HNSW index on `embedding::halfvec(N)` (halfvec, because HNSW on
    `vector` stops at 2,000 dimensions and text-embedding-3-large has 3,072).
    """

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # The document version these chunks belong to: a new version's chunks replace the old
    # ones in one transaction.
    document_version = models.PositiveIntegerField()
    order = models.PositiveIntegerField()
    text = models.TextField()
    heading_path = models.JSONField(default=list, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    token_count = models.PositiveIntegerField()
    embedding_model = models.CharField(max_length=100)
    embedding_dimensions = models.PositiveSmallIntegerField()
    embedding = HalfVectorField()
    # Word search for languages with spaces; Japanese is found through pg_trgm on `text`.
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config="simple"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document_id", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "document_version", "order"], name="chunk_order_unique"
            )
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="chunk_search_vector_gin"),
            GinIndex(fields=["text"], name="chunk_text_trgm", opclasses=["gin_trgm_ops"]),
            models.Index(fields=["embedding_model"], name="chunk_embedding_model"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.order}"
