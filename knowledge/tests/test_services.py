"""Uploads, versions and ingestion, with the local embedding model and real PostgreSQL."""

import pytest
from django.contrib.auth.models import Group

from knowledge.embeddings import embedder_default
from knowledge.models import Chunk, Document
from knowledge.parsing import DocumentError
from knowledge.services import (
    DuplicateDocument,
    document_create,
    document_ingest,
    document_new_version,
)
from knowledge.tests.samples import pdf_bytes

pytestmark = pytest.mark.django_db

HANDBOOK = (
    b"# Handbook\n\n## Leave\n\nEmployees get twenty days of paid leave.\n\n"
    b"## Travel\n\nTrains, not planes.\n"
)


def test_upload_is_ingested_by_the_task_into_ready_chunks(committed):
    finance = Group.objects.create(name="finance")
    document = committed(
        document_create, uploaded_by=None, filename="handbook.md", data=HANDBOOK, groups=[finance]
    )
    document.refresh_from_db()  # the immediate task backend ran on commit
    assert document.status == Document.Status.READY and document.progress == 100
    assert document.title == "Handbook" and document.language == "en"
    assert list(document.allowed_groups.all()) == [finance]
    chunks = list(document.chunks.order_by("order"))
    assert [c.heading_path for c in chunks] == [["Handbook", "Leave"], ["Handbook", "Travel"]]
    assert {c.embedding_model for c in chunks} == {"multilingual-e5-small"}
    assert len(chunks[0].embedding) == 384


def test_the_same_file_twice_is_refused(committed):
    first = committed(document_create, uploaded_by=None, filename="a.md", data=HANDBOOK)
    with pytest.raises(DuplicateDocument) as caught:
        committed(document_create, uploaded_by=None, filename="copy.md", data=HANDBOOK)
    assert caught.value.existing == first


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("virus.exe", b"MZ", "not supported"),
        ("big.txt", b"a" * 50_000_001, "50.0 MB; the limit is 50 MB"),
    ],
)
def test_unsupported_or_oversized_uploads_are_refused_at_once(committed, filename, data, message):
    with pytest.raises(DocumentError, match=message):
        committed(document_create, uploaded_by=None, filename=filename, data=data)
    assert not Document.objects.exists()


def test_a_bad_file_ends_failed_with_a_message_and_no_chunks(committed):
    document = committed(
        document_create, uploaded_by=None, filename="broken.pdf", data=b"%PDF-1.4 junk"
    )
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "damaged" in document.error
    assert not Chunk.objects.exists()


def test_a_new_version_replaces_the_chunks_and_a_failed_one_keeps_the_old(committed):
    document = committed(
        document_create,
        uploaded_by=None,
        filename="policy.pdf",
        data=pdf_bytes(["Leave is twenty days."]),
    )
    document = committed(
        document_new_version,
        document=document,
        uploaded_by=None,
        filename="policy.pdf",
        data=pdf_bytes(["Leave is twenty-five days."]),
    )
    document.refresh_from_db()
    assert document.version == 2 and document.status == Document.Status.READY
    assert [c.text for c in document.chunks.all()] == ["Leave is twenty-five days."]
    assert {c.document_version for c in document.chunks.all()} == {2}

    document = committed(
        document_new_version,
        document=document,
        uploaded_by=None,
        filename="policy.pdf",
        data=pdf_bytes([""]),
    )
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED and "No text" in document.error
    # Nothing half indexed: version 2's passages still answer, and version 2's file is kept.
    assert [c.text for c in document.chunks.all()] == ["Leave is twenty-five days."]
    assert document.superseded_file and document.file.storage.exists(document.superseded_file)


def test_files_of_versions_are_removed_only_once_a_newer_one_is_indexed(committed):
    document = committed(document_create, uploaded_by=None, filename="a.md", data=HANDBOOK)
    storage, first = document.file.storage, document.file.name
    pending = committed(
        document_new_version,
        document=document,
        uploaded_by=None,
        filename="b.pdf",
        data=pdf_bytes([""]),
    )  # fails: no text
    assert pending.status == Document.Status.FAILED and storage.exists(first)
    third = committed(
        document_new_version,
        document=pending,
        uploaded_by=None,
        filename="c.md",
        data=HANDBOOK + b"\nAnd a new rule.",
    )
    assert third.status == Document.Status.READY and third.version == 3
    # The indexed file (1) went once 3 was indexed; the never-indexed one (2) right away.
    assert not storage.exists(first) and not storage.exists(pending.file.name)
    assert storage.exists(third.file.name) and third.superseded_file == ""


def test_a_job_overtaken_by_a_new_version_does_not_write_over_its_state(committed):
    document = committed(document_create, uploaded_by=None, filename="a.md", data=HANDBOOK)
    local = embedder_default()

    class UploadMidway:
        """While version 1 is being embedded, an admin uploads version 2."""

        model, dimensions = local.model, local.dimensions

        def passages(self, texts):
            document_new_version(
                document=document, uploaded_by=None, filename="b.md", data=HANDBOOK + b"\nv2"
            )
            raise ConnectionError("and this job then fails")

        def query(self, text):
            raise AssertionError("indexing asks no questions")

    document_ingest(document_id=document.pk, embedder=UploadMidway())
    document.refresh_from_db()
    # Version 2's state, not the overtaken job's "failed".
    assert (document.version, document.status, document.error) == (2, "queued", "")


def test_an_embedding_service_refusal_fails_the_document_with_a_safe_message(committed):
    import openai

    from knowledge.embeddings import OpenAIEmbedder
    from knowledge.tests.fake_embeddings import FakeEmbeddingsServer

    document = document_create(uploaded_by=None, filename="a.md", data=HANDBOOK, enqueue=False)
    with FakeEmbeddingsServer() as fake:
        client = openai.OpenAI(api_key="sk-wrong-1234", base_url=f"{fake.url}/v1", max_retries=0)
        embedder = OpenAIEmbedder(
            client=client, model="text-embedding-3-small", dimensions=1536, send_dimensions=False
        )
        document = document_ingest(document_id=document.pk, embedder=embedder)
    assert document.status == Document.Status.FAILED
    assert "refused Koe's credentials (HTTP 401)" in document.error
    assert "sk-" not in document.error and not document.chunks.exists()


class DyingEmbedder:
    """The worker process dies (not an exception Koe may catch) after the first batch."""

    model = "multilingual-e5-small"
    dimensions = 384

    def __init__(self) -> None:
        self.calls = 0

    def passages(self, texts):
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt("worker killed")
        return embedder_default().passages(texts)

    def query(self, text):
        raise AssertionError


def test_a_worker_dying_midway_leaves_no_partial_chunks_and_can_be_retried(committed):
    body = "\n\n".join(f"## Rule {i}\n\nRule {i} applies." for i in range(40))
    document = committed(
        document_create, uploaded_by=None, filename="rules.md", data=f"# Rules\n\n{body}".encode()
    )
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    before = document.chunks.count()
    assert before > 32  # more than one embedding batch
    Chunk.objects.all().delete()
    with pytest.raises(KeyboardInterrupt):
        document_ingest(document_id=document.pk, embedder=DyingEmbedder())
    document.refresh_from_db()
    assert document.status == Document.Status.PROCESSING
    assert not Chunk.objects.exists()
    retried = document_ingest(document_id=document.pk)
    assert retried.status == Document.Status.READY and retried.chunks.count() == before
