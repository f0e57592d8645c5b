"""The per-model HNSW index: built on first use, used by chunk_search's vector ranking."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from knowledge.embeddings import embedder_default
from knowledge.selectors import chunk_search
from knowledge.services import document_create
from knowledge.vector_index import (
    _index_valid,
    build_lock_key,
    vector_index_ensure,
    vector_index_name,
)

pytestmark = pytest.mark.django_db


def test_first_ingestion_builds_the_models_index_and_search_can_use_it(committed, make_user):
    committed(
        document_create,
        uploaded_by=None,
        filename="leave.md",
        data=b"# Leave\n\nEmployees get twenty days of paid leave.",
    )
    embedder = embedder_default()
    name = vector_index_name(model=embedder.model, dimensions=embedder.dimensions)
    assert _index_valid(name) is True

    with CaptureQueriesContext(connection) as queries:
        chunk_search(user=make_user("emi", "employee"), query="paid leave", k=3)
    vector_sql = next(q["sql"] for q in queries.captured_queries if "<=>" in q["sql"])
    with connection.cursor() as cursor:
        # The table is tiny, so forbid the sequential scan to see that the index matches the
        # query's expression and predicate at all.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + vector_sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert name in plan


def test_ensure_is_idempotent_and_rebuilds_an_invalid_index():
    name = vector_index_ensure(model="text-embedding-3-large", dimensions=3072)
    assert vector_index_ensure(model="text-embedding-3-large", dimensions=3072) == name
    with connection.cursor() as cursor:
        # What an interrupted CREATE INDEX CONCURRENTLY leaves behind.
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name]
        )
    assert _index_valid(name) is False
    vector_index_ensure(model="text-embedding-3-large", dimensions=3072)
    assert _index_valid(name) is True


@pytest.mark.parametrize(
    ("model", "dimensions"), [("x'; DROP TABLE knowledge_chunk; --", 384), ("ok", 5000)]
)
def test_names_and_sizes_that_cannot_be_indexed_are_refused(model, dimensions):
    with pytest.raises(ValueError, match="unusable"):
        vector_index_ensure(model=model, dimensions=dimensions)


def test_an_index_someone_else_is_building_is_left_to_them():
    from django.db import connections

    name = vector_index_name(model="text-embedding-3-small", dimensions=768)
    other = connections.create_connection("default")
    try:
        other.ensure_connection()
        other.set_autocommit(True)
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [build_lock_key(name)])
        assert vector_index_ensure(model="text-embedding-3-small", dimensions=768) == name
        assert _index_valid(name) is None  # not built here: the other process is on it
    finally:
        other.close()
    vector_index_ensure(model="text-embedding-3-small", dimensions=768)
    assert _index_valid(name) is True
