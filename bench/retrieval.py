"""Latency and recall of chunk_search at 10k and 100k passages, with and without access filters.

Run: .venv/bin/python bench/retrieval.py [--sizes 10000,100000] [--queries 100]

Works in its own database (koe_bench_retrieval) on the embedded PostgreSQL, which it fills with
synthetic passages: 384-dimension vectors drawn around 300 topic centres (the shape real
embeddings have) and texts of random words, in documents of 20 passages. 4% of the documents
are open to every employee; the rest belong to one of 16 groups. Three readers search:

  knowledge admin     sees everything (no access filter)
  employee, 4 groups  sees about 28% of the passages
  employee, 1 group   sees about 10%

For each it prints p50/p95 of a whole chunk_search (k=10) and of its two rankings, and
recall@10 of the HNSW index against an exact scan under the same filter. The query vector is
precomputed (the local model's own time per query is printed once, separately), so the table
measures PostgreSQL. Ratios are against the first row of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.own_database import django_in_own_database

django_in_own_database("koe_bench_retrieval")

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from accounts.roles import Role
from accounts.services import user_roles_set
from knowledge.embeddings import LOCAL_MODEL, embedder_default
from knowledge.models import Chunk, Document
from knowledge.selectors import (
    chunk_ids_by_vector,
    chunk_ids_by_words,
    chunk_search,
    documents_visible,
)
from knowledge.vector_index import vector_index_ensure

DIMENSIONS = 384
PER_DOCUMENT = 20
GROUPS = 16
OPEN_SHARE = 0.04
CENTRES = 300
K = 10
rng = np.random.default_rng(7)
VOCABULARY = [
    "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(n)))
    for n in rng.integers(4, 10, size=3000)
]


class FixedEmbedder:
    """Answers with the query vector chosen for the current query (no model time)."""

    model = LOCAL_MODEL
    dimensions = DIMENSIONS

    def __init__(self) -> None:
        self.vector: list[float] = []

    def query(self, text: str) -> list[float]:
        return self.vector

    def passages(self, texts: Sequence[str]) -> list[list[float]]:
        raise NotImplementedError


@dataclass
class Reader:
    label: str
    user: object


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def fill(size: int) -> tuple[np.ndarray, list[str]]:
    """Replace the bench database's documents with `size` synthetic passages."""
    Chunk.objects.all().delete()
    Document.objects.all().delete()
    groups = [Group.objects.get_or_create(name=f"bench-{g}")[0] for g in range(GROUPS)]
    centres = unit(rng.normal(size=(CENTRES, DIMENSIONS)))
    topic = rng.integers(0, CENTRES, size=size)
    vectors = unit(centres[topic] + rng.normal(scale=0.06, size=(size, DIMENSIONS)))
    texts = [" ".join(rng.choice(VOCABULARY, size=60)) for _ in range(size)]
    documents = Document.objects.bulk_create(
        Document(
            title=f"Bench {d}",
            file=f"bench/{d}.md",
            original_name=f"{d}.md",
            kind="markdown",
            checksum=f"{size}-{d}",
            size_bytes=1,
            status="ready",
            progress=100,
        )
        for d in range(size // PER_DOCUMENT)
    )
    through = Document.allowed_groups.through
    through.objects.bulk_create(
        through(document_id=document.pk, group_id=groups[int(rng.integers(GROUPS))].pk)
        for document in documents
        if rng.random() >= OPEN_SHARE
    )
    batch = 5000
    for start in range(0, size, batch):
        Chunk.objects.bulk_create(
            Chunk(
                document=documents[i // PER_DOCUMENT],
                document_version=1,
                order=i % PER_DOCUMENT,
                text=texts[i],
                token_count=60,
                embedding_model=LOCAL_MODEL,
                embedding_dimensions=DIMENSIONS,
                embedding=vectors[i].tolist(),
            )
            for i in range(start, min(start + batch, size))
        )
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("ANALYZE knowledge_chunk")
        cursor.execute("ANALYZE knowledge_document")
    vector_index_ensure(model=LOCAL_MODEL, dimensions=DIMENSIONS)
    return vectors, texts


def readers() -> list[Reader]:
    model = get_user_model()
    made = []
    for label, roles, groups in [
        ("knowledge admin", [Role.KNOWLEDGE_ADMIN], []),
        ("employee, 4 groups", [Role.EMPLOYEE], range(4)),
        ("employee, 1 group", [Role.EMPLOYEE], range(1)),
    ]:
        user, _ = model.objects.get_or_create(username=f"bench {label}")
        user_roles_set(user=user, roles=roles)
        # Only the bench groups change: set() would also drop the role groups.
        user.groups.remove(*Group.objects.filter(name__startswith="bench-"))
        user.groups.add(*Group.objects.filter(name__in=[f"bench-{g}" for g in groups]))
        made.append(Reader(label, user))
    return made


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def measure(size: int, queries: int, rows: list[tuple]) -> None:
    started = time.perf_counter()
    vectors, texts = fill(size)
    print(
        f"  filled {size:,} passages and built the index in {time.perf_counter() - started:.0f} s"
    )
    embedder = FixedEmbedder()
    picks = rng.integers(0, size, size=queries)
    for reader in readers():
        total, by_vector, by_words, recalls = [], [], [], []
        for pick in picks:
            query_vector = unit(
                vectors[pick : pick + 1] + rng.normal(scale=0.03, size=(1, DIMENSIONS))
            )
            embedder.vector = query_vector[0].tolist()
            words = " ".join(texts[pick].split()[:3])
            t0 = time.perf_counter()
            chunk_search(user=reader.user, query=words, k=K, embedder=embedder)
            t1 = time.perf_counter()
            approx = chunk_ids_by_vector(
                user=reader.user, vector=embedder.vector, embedder=embedder, limit=K
            )
            t2 = time.perf_counter()
            chunk_ids_by_words(user=reader.user, query=words, limit=40)
            t3 = time.perf_counter()
            exact = chunk_ids_by_vector(
                user=reader.user, vector=embedder.vector, embedder=embedder, limit=K, exact=True
            )
            total.append(t1 - t0)
            by_vector.append(t2 - t1)
            by_words.append(t3 - t2)
            recalls.append(len(set(approx) & set(exact)) / max(1, len(exact)))
        share = Chunk.objects.filter(document__in=documents_visible(user=reader.user)).count()
        rows.append(
            (
                f"{size:,}",
                reader.label,
                f"{share / size:.0%}",
                pct(total, 50),
                pct(total, 95),
                pct(by_vector, 50),
                pct(by_words, 50),
                statistics.mean(recalls),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    print(
        f"retrieval benchmark: {args.queries} queries per row, k={K}, database koe_bench_retrieval"
    )

    model = embedder_default()
    model.query("warm up")
    started = time.perf_counter()
    for i in range(20):
        model.query(f"How many days of paid leave do I get in year {i}?")
    e5_ms = (time.perf_counter() - started) / 20 * 1000

    rows: list[tuple] = []
    for size in [int(s) for s in args.sizes.split(",")]:
        measure(size, args.queries, rows)
    base = rows[0][3]
    print()
    print(
        f"{'passages':>9} {'reader':<20} {'visible':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'x p50':>6} {'vector p50':>10} {'words p50':>9} {'recall@10':>9}"
    )
    for size, label, share, p50, p95, vec, words, recall in rows:
        print(
            f"{size:>9} {label:<20} {share:>7} {p50:>8.1f} {p95:>8.1f} {p50 / base:>6.2f} "
            f"{vec:>10.1f} {words:>9.1f} {recall:>9.3f}"
        )
    print(f"\nlocal query embedding ({LOCAL_MODEL}, CPU): {e5_ms:.1f} ms per search, on top")


if __name__ == "__main__":
    main()
