"""Writes of the knowledge base: uploads, versions, ingestion."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import get_valid_filename

from knowledge.chunking import chunks_from_sections
from knowledge.embeddings import Embedder, EmbeddingError, embedder_default
from knowledge.models import MAX_INGEST_ATTEMPTS, STALLED_AFTER, Chunk, Document
from knowledge.parsing import (
    DocumentError,
    document_format,
    document_parse,
    document_size_check,
)
from knowledge.vector_index import vector_index_ensure

logger = logging.getLogger(__name__)

EMBED_BATCH = 32
_KANA_OR_KANJI = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


class DuplicateDocument(Exception):
    """The same file (same checksum) is already in the knowledge base."""

    def __init__(self, existing: Document) -> None:
        super().__init__(f"This file is already in the knowledge base as {existing.title!r}.")
        self.existing = existing


def upload_names(filename: str) -> tuple[str, str]:
    """(the name shown, the name stored) of an uploaded file. A name is the browser's word:
    it may carry folders, `..`, control characters or markup. What is shown keeps the last
    path part without control characters (templates escape it); what is stored is reduced to
    letters (any script), digits, `-`, `_` and `.`, so no name leads outside the upload
    folder."""
    last = PurePath(filename.replace("\\", "/")).name
    shown = "".join(ch for ch in last if ch.isprintable())[:255].strip() or "document"
    stored = get_valid_filename(shown.replace("..", "_")) if shown else ""
    suffix = PurePath(shown).suffix
    return shown, stored if stored.strip("._") else f"document{suffix}"


def max_upload_bytes() -> int:
    return int(settings.KOE_MAX_UPLOAD_MB) * 1_000_000


def document_upload_check(
    *, filename: str, data: bytes, replacing: Document | None = None
) -> tuple[str, str]:
    """Refuse an upload at once (unsupported type, over the limit, already in the knowledge
    base); return its kind and checksum."""
    kind = document_format(filename)
    document_size_check(size=len(data), max_bytes=max_upload_bytes())
    checksum = hashlib.sha256(data).hexdigest()
    same = Document.objects.filter(checksum=checksum)
    if replacing is not None:
        same = same.exclude(pk=replacing.pk)
    existing = same.first()
    if existing is not None:
        raise DuplicateDocument(existing)
    return kind, checksum


@transaction.atomic
def document_create(
    *,
    uploaded_by: User | None,
    filename: str,
    data: bytes,
    groups: Iterable[Group] = (),
    title: str = "",
    enqueue: bool = True,
) -> Document:
    """Store an upload as a queued document and queue its ingestion (unless the caller
    ingests it itself)."""
    filename, stored_name = upload_names(filename)
    kind, checksum = document_upload_check(filename=filename, data=data)
    document = Document(
        title=title or filename.rsplit(".", 1)[0],
        original_name=filename,
        kind=kind,
        checksum=checksum,
        size_bytes=len(data),
        uploaded_by=uploaded_by,
    )
    document.file.save(stored_name, ContentFile(data), save=False)
    try:
        document.save()
    except Exception:
        if document.file.name:  # no row, no file (there is no commit to wait for)
            document.file.storage.delete(document.file.name)
        raise
    document.allowed_groups.set(list(groups))
    if enqueue:
        document_enqueue(document=document)
    return document


@transaction.atomic
def document_new_version(
    *, document: Document, uploaded_by: User | None, filename: str, data: bytes
) -> Document:
    """Replace a document's file; its passages switch to the new version once it is indexed."""
    filename, stored_name = upload_names(filename)
    kind, checksum = document_upload_check(filename=filename, data=data, replacing=document)
    document = Document.objects.select_for_update().get(pk=document.pk)
    document.version += 1
    document.kind = kind
    document.original_name = filename
    document.checksum = checksum
    document.size_bytes = len(data)
    document.uploaded_by = uploaded_by
    document.status = Document.Status.QUEUED
    document.progress = 0
    document.error = ""
    document.ingest_attempts = 0
    if document.superseded_file:
        # The current file is an upload that was never indexed: nothing refers to it.
        _file_delete_on_commit(document.file.storage, document.file.name)
    else:
        document.superseded_file = document.file.name or ""
    document.file.save(stored_name, ContentFile(data), save=False)
    document.save()
    document_enqueue(document=document)
    return document


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Delete a document, its passages (cascade) and, once that has committed, its file."""
    storage, names = document.file.storage, (document.file.name, document.superseded_file)
    document.delete()
    for name in names:
        _file_delete_on_commit(storage, name)


def _file_delete_on_commit(storage: Storage, name: str | None) -> None:
    # After the commit only: a rolled-back delete must still find its file.
    if name:
        transaction.on_commit(lambda: storage.delete(name))


@transaction.atomic
def document_reindex(*, document: Document) -> Document:
    """Queue a document to be parsed and embedded again (a retry after a failure, or a
    re-embedding with the current model); its passages stay searchable meanwhile."""
    document = Document.objects.select_for_update().get(pk=document.pk)
    document.status = Document.Status.QUEUED
    document.progress = 0
    document.error = ""
    document.ingest_attempts = 0
    document.save(update_fields=["status", "progress", "error", "ingest_attempts", "updated_at"])
    document_enqueue(document=document)
    return document


@dataclass(frozen=True)
class Recovery:
    requeued: list[int]
    failed: list[int]


def documents_recover_stalled(*, stalled_after: timedelta = STALLED_AFTER) -> Recovery:
    """Documents whose ingestion stopped without a word (its worker was killed: no progress
    for `stalled_after`) are queued again, or failed after MAX_INGEST_ATTEMPTS tries."""
    cutoff = timezone.now() - stalled_after
    requeued: list[int] = []
    failed: list[int] = []
    with transaction.atomic():
        stalled = Document.objects.select_for_update(skip_locked=True).filter(
            status=Document.Status.PROCESSING, updated_at__lte=cutoff
        )
        for document in stalled:
            if document.ingest_attempts >= MAX_INGEST_ATTEMPTS:
                document.status = Document.Status.FAILED
                document.progress = 0
                document.error = (
                    f"Indexing stopped {document.ingest_attempts} times without finishing (its "
                    "worker was stopped or ran out of memory). Try a smaller file, or ask your "
                    "administrator to check the task worker."
                )
                failed.append(document.pk)
            else:
                document.status = Document.Status.QUEUED
                document.progress = 0
                document_enqueue(document=document)
                requeued.append(document.pk)
            document.save(update_fields=["status", "progress", "error", "updated_at"])
    for pk in requeued:
        logger.warning("document %s stalled while indexing; queued again", pk)
    for pk in failed:
        logger.error("document %s stalled while indexing too often; marked failed", pk)
    return Recovery(requeued=requeued, failed=failed)


def document_enqueue(*, document: Document) -> None:
    """Queue ingestion once the current transaction has committed."""
    from knowledge.tasks import document_ingest_task

    document_id = document.pk
    transaction.on_commit(lambda: document_ingest_task.enqueue(document_id))


def document_ingest(*, document_id: int, embedder: Embedder | None = None) -> Document:
    """Parse, chunk and embed a document; swap its passages in one transaction.

    A failure leaves the previous passages (if any) in place and the document `failed` with a
    readable error; a worker that dies midway leaves no partial passages, only `processing`.
    """
    embedder = embedder or embedder_default()
    document = Document.objects.get(pk=document_id)
    version = document.version
    Document.objects.filter(pk=document_id, version=version).update(
        ingest_attempts=F("ingest_attempts") + 1
    )
    _progress(document, status=Document.Status.PROCESSING, progress=1, error="")
    try:
        with document.file.open("rb") as handle:
            data = handle.read()
        parsed = document_parse(
            filename=document.original_name, data=data, max_bytes=max_upload_bytes()
        )
        drafts = chunks_from_sections(parsed.sections)
        vectors: list[list[float]] = []
        for start in range(0, len(drafts), EMBED_BATCH):
            batch = drafts[start : start + EMBED_BATCH]
            vectors += embedder.passages([_embedding_input(parsed.title, d) for d in batch])
            _progress(document, progress=min(95, 5 + 90 * len(vectors) // len(drafts)))
    except (DocumentError, EmbeddingError) as exc:
        _progress(document, status=Document.Status.FAILED, progress=0, error=str(exc))
        return document
    except Exception:
        logger.exception("ingestion of document %s failed", document_id)
        _progress(
            document,
            status=Document.Status.FAILED,
            progress=0,
            error="Koe could not index this file (an internal error); try again later.",
        )
        return document

    # Progress marks the document alive (knowledge_recover): a first index build can take a while.
    _progress(document, progress=96)
    try:
        vector_index_ensure(model=embedder.model, dimensions=embedder.dimensions)
    except Exception:
        # Search still works without it (an exact scan); the next ingestion tries again.
        logger.exception("could not build the vector index for %s", embedder.model)
    _progress(document, progress=98)
    text = " ".join(s.text for s in parsed.sections)[:5000]
    language = "ja" if len(_KANA_OR_KANJI.findall(text)) > len(text) * 0.1 else "en"
    with transaction.atomic():
        locked = Document.objects.select_for_update().get(pk=document_id)
        if locked.version != version:
            return locked  # a newer upload arrived meanwhile; its own ingestion will finish
        Chunk.objects.filter(document=locked).delete()
        Chunk.objects.bulk_create(
            Chunk(
                document=locked,
                document_version=version,
                order=draft.order,
                text=draft.text,
                heading_path=list(draft.heading_path),
                page=draft.page,
                token_count=draft.token_count,
                embedding_model=embedder.model,
                embedding_dimensions=embedder.dimensions,
                embedding=vector,
            )
            for draft, vector in zip(drafts, vectors, strict=True)
        )
        locked.status = Document.Status.READY
        locked.progress = 100
        locked.error = ""
        locked.language = language
        locked.indexed_at = timezone.now()
        _file_delete_on_commit(locked.file.storage, locked.superseded_file)
        locked.superseded_file = ""
        if parsed.title and locked.title == locked.original_name.rsplit(".", 1)[0]:
            locked.title = parsed.title
        locked.save()
    return locked


def _embedding_input(title: str, draft: object) -> str:
    # e5 retrieves better when a passage knows where it comes from.
    heading = " > ".join(getattr(draft, "heading_path", ()))
    prefix = f"{title} — {heading}" if heading else title
    return f"{prefix}\n{getattr(draft, 'text', '')}"


def _progress(document: Document, **fields: object) -> None:
    # Only while the document is still the version this job indexes: a job overtaken by a
    # new upload must not write its state over the new version's.
    Document.objects.filter(pk=document.pk, version=document.version).update(
        **fields, updated_at=timezone.now()
    )
    for name, value in fields.items():
        setattr(document, name, value)
