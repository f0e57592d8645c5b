"""One HNSW index per embedding model, made when the model's first passages arrive.

The embedding column has no fixed size, so no single index can cover it: each (model, size)
gets a partial index on `embedding::halfvec(N)`, the same expression chunk_search orders by,
restricted to that model's rows. halfvec, because HNSW on `vector` stops at 2,000 dimensions.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

from knowledge.models import Chunk

logger = logging.getLogger(__name__)

PREFIX = "chunk_hnsw_"
# Model names are configuration, not user input, but they end up inside DDL: keep them tame.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9._:@/-]{1,100}$")


def vector_index_name(*, model: str, dimensions: int) -> str:
    """The index name of one model and size (stable, within PostgreSQL's 63 characters)."""
    digest = hashlib.sha256(f"{model}:{dimensions}".encode()).hexdigest()[:16]
    return f"{PREFIX}{digest}"


def vector_index_ensure(*, model: str, dimensions: int) -> str:
    """Create the model's HNSW index unless a valid one exists; return its name.

    Outside a transaction it is built CONCURRENTLY, so uploads and searches go on meanwhile;
    an index left invalid by an interrupted build is dropped and built again.
    """
    if not _MODEL_NAME.match(model) or not 0 < dimensions <= 4000:
        raise ValueError(f"unusable embedding model for an index: {model!r} ({dimensions})")
    name = vector_index_name(model=model, dimensions=dimensions)
    if _index_valid(name):
        return name
    # One builder at a time: an index being built concurrently also reads as invalid, and a
    # second worker must not take it for a leftover and drop it. The others do not wait (a
    # waiting statement would hold up CREATE INDEX CONCURRENTLY itself): searches scan
    # exactly until the builder is done.
    with _build_lock(name) as mine:
        if not mine:
            logger.info("vector index %s is being built by another process", name)
            return name
        valid = _index_valid(name)
        if valid:
            return name
        if connection.in_atomic_block:
            # A savepoint: a failed build must not abort the caller's transaction.
            with transaction.atomic():
                _build(name, model, dimensions, rebuild=valid is False, concurrently="")
        else:
            _build(name, model, dimensions, rebuild=valid is False, concurrently=" CONCURRENTLY")
    logger.info("vector index %s ready for %s (%d dimensions)", name, model, dimensions)
    return name


def build_lock_key(name: str) -> int:
    """The advisory lock a process holds while it builds the index `name`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _build_lock(name: str) -> Iterator[bool]:
    """Try to become the one builder of `name`; yields whether this process is."""
    key = build_lock_key(name)
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # Released with the transaction.
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
            yield bool(cursor.fetchone()[0])
            return
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        mine = bool(cursor.fetchone()[0])
        try:
            yield mine
        finally:
            if mine:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _build(name: str, model: str, dimensions: int, *, rebuild: bool, concurrently: str) -> None:
    table = connection.ops.quote_name(Chunk._meta.db_table)
    with connection.cursor() as cursor:
        if not concurrently:
            # Inside a transaction, deferred foreign-key checks of fresh rows would block
            # CREATE INDEX ("pending trigger events"): run them now; Django's are deferred.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        if rebuild:
            logger.warning("rebuilding the invalid vector index %s", name)
            cursor.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")
        cursor.execute(
            f"CREATE INDEX{concurrently} IF NOT EXISTS {name} ON {table} "
            f"USING hnsw ((embedding::halfvec({dimensions})) halfvec_cosine_ops) "
            f"WHERE embedding_model = '{model}' AND embedding_dimensions = {dimensions}"
        )


def vector_indexes_prune() -> list[str]:
    """Drop the indexes of models that no passage uses any more; return their names."""
    in_use = {
        vector_index_name(model=m, dimensions=d)
        for m, d in Chunk.objects.values_list("embedding_model", "embedding_dimensions").distinct()
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            [Chunk._meta.db_table, PREFIX + "%"],
        )
        unused = [row[0] for row in cursor.fetchall() if row[0] not in in_use]
        # Concurrently where it can, so that searches are not blocked while it goes.
        concurrently = "" if connection.in_atomic_block else " CONCURRENTLY"
        for name in unused:
            cursor.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")
    return unused


def _index_valid(name: str) -> bool | None:
    """True for a usable index, False for one an interrupted build left behind, None if absent."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])
