"""The schema: embeddings of any model side by side, word and trigram search, constraints."""

import pytest
from django.contrib.postgres.search import SearchQuery, TrigramWordSimilarity
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection
from pgvector.django import CosineDistance

from knowledge.models import Chunk, Document

pytestmark = pytest.mark.django_db


def make_document(title: str = "Handbook") -> Document:
    document = Document(
        title=title,
        original_name=f"{title}.txt",
        kind=Document.Kind.TEXT,
        checksum="0" * 64,
        size_bytes=10,
    )
    document.file.save(f"{title}.txt", ContentFile(b"x"), save=False)
    document.save()
    return document


def unit(dimensions: int, hot: int) -> list[float]:
    vector = [0.0] * dimensions
    vector[hot] = 1.0
    return vector


def chunk(document: Document, order: int, text: str, model: str, vector: list[float]) -> Chunk:
    return Chunk(
        document=document,
        document_version=1,
        order=order,
        text=text,
        token_count=len(text.split()),
        embedding_model=model,
        embedding_dimensions=len(vector),
        embedding=vector,
    )


def test_embeddings_of_different_sizes_share_the_column_and_are_searchable_per_model():
    document = make_document()
    Chunk.objects.bulk_create(
        [
            chunk(document, 0, "east", "e5-small", unit(384, 0)),
            chunk(document, 1, "north", "e5-small", unit(384, 1)),
            chunk(document, 2, "large", "te3-large", unit(3072, 0)),
        ]
    )
    nearest = (
        Chunk.objects.filter(embedding_model="e5-small")
        .annotate(distance=CosineDistance("embedding", unit(384, 0)))
        .order_by("distance")
        .values_list("text", flat=True)
    )
    assert list(nearest) == ["east", "north"]


def test_word_search_and_japanese_trigram_search():
    document = make_document()
    Chunk.objects.bulk_create(
        [
            chunk(document, 0, "Employees receive twenty days of paid leave.", "m", [1, 0, 0]),
            chunk(document, 1, "有給休暇は年間二十日です。申請は上長に行います。", "m", [0, 1, 0]),
        ]
    )
    words = Chunk.objects.filter(search_vector=SearchQuery("leave", config="simple"))
    assert [c.order for c in words] == [0]
    japanese = (
        Chunk.objects.annotate(similarity=TrigramWordSimilarity("有給休暇", "text"))
        .filter(similarity__gt=0.3)
        .values_list("order", flat=True)
    )
    assert list(japanese) == [1]


def test_chunk_order_is_unique_per_document_version():
    document = make_document()
    fields = dict(
        document=document,
        text="t",
        token_count=1,
        embedding_model="m",
        embedding_dimensions=3,
        embedding=[1, 0, 0],
    )
    Chunk.objects.create(document_version=1, order=0, **fields)
    Chunk.objects.create(document_version=2, order=0, **fields)  # the next version may coexist
    with pytest.raises(IntegrityError):
        Chunk.objects.create(document_version=1, order=0, **fields)


def test_extensions_are_installed():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension")
        names = {row[0] for row in cursor.fetchall()}
    assert {"vector", "pg_trgm"} <= names
