"""Retrieval quality on a small labelled set, in English and Japanese.

Run: .venv/bin/python bench/eval_retrieval.py

Indexes the six documents of the demo knowledge base in knowledge/demo/ (three policies
written for Koe, each in English and in Japanese) with the configured embedding model (the
local one by default) into its own database (koe_bench_eval), then asks the questions of
bench/eval/questions.json. A question is answered when a passage of the right section comes
back, in either language (the Japanese and English policies say the same). Prints hit@5 and
MRR@10 for the hybrid search Koe uses and for each of its two rankings alone, by question
language, all from this one run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.own_database import django_in_own_database

django_in_own_database("koe_bench_eval")

from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.roles import Role
from accounts.services import user_roles_set
from knowledge.embeddings import embedder_default
from knowledge.models import Chunk, Document
from knowledge.selectors import chunk_ids_by_vector, chunk_ids_by_words, chunk_search
from knowledge.services import document_create, document_ingest

HERE = Path(__file__).parent / "eval"
DOCUMENTS = Path(__file__).resolve().parents[1] / "knowledge" / "demo"
DEPTH = 10


def index_corpus() -> dict[int, str]:
    """(Re)index the corpus; map each passage id to its section heading."""
    for document in Document.objects.all():
        document.delete()
    for path in sorted(DOCUMENTS.glob("*.md")):
        created = document_create(
            uploaded_by=None, filename=path.name, data=path.read_bytes(), enqueue=False
        )
        indexed = document_ingest(document_id=created.pk)
        assert indexed.status == Document.Status.READY, (path, indexed.error)
    return {c.pk: (c.heading_path or [""])[-1] for c in Chunk.objects.all()}


def first_hit(ids: list[int], sections: dict[int, str], answers: list[str]) -> int | None:
    for rank, pk in enumerate(ids[:DEPTH], start=1):
        if sections.get(pk) in answers:
            return rank
    return None


def main() -> None:
    call_command("migrate", verbosity=0)
    embedder = embedder_default()
    sections = index_corpus()
    user, _ = get_user_model().objects.get_or_create(username="eval reader")
    user_roles_set(user=user, roles=[Role.EMPLOYEE])
    questions = json.loads((HERE / "questions.json").read_text(encoding="utf-8"))

    methods = {
        "hybrid (Koe)": lambda q: [
            h.chunk_id for h in chunk_search(user=user, query=q, k=DEPTH, embedder=embedder)
        ],
        "vector only": lambda q: chunk_ids_by_vector(
            user=user, vector=embedder.query(q), embedder=embedder, limit=DEPTH
        ),
        "words only": lambda q: chunk_ids_by_words(user=user, query=q, limit=DEPTH),
    }
    print(
        f"labelled retrieval evaluation: {len(sections)} passages, {len(questions)} questions, "
        f"model {embedder.model}"
    )
    print(f"{'method':<14} {'lang':<4} {'n':>3} {'hit@5':>6} {'MRR@10':>7} {'x hybrid MRR':>13}")
    results: dict[tuple[str, str], tuple[int, float, float]] = {}
    misses: list[str] = []
    for name, method in methods.items():
        for lang in ("en", "ja", "all"):
            chosen = [q for q in questions if lang in ("all", q["lang"])]
            ranks = [first_hit(method(q["q"]), sections, q["a"]) for q in chosen]
            hit5 = sum(1 for r in ranks if r is not None and r <= 5) / len(chosen)
            mrr = sum(1 / r for r in ranks if r is not None) / len(chosen)
            results[(name, lang)] = (len(chosen), hit5, mrr)
            if name == "hybrid (Koe)" and lang != "all":
                misses += [q["q"] for q, r in zip(chosen, ranks, strict=True) if not r or r > 5]
    for (name, lang), (n, hit5, mrr) in results.items():
        base = results[("hybrid (Koe)", lang)][2] or 1.0
        print(f"{name:<14} {lang:<4} {n:>3} {hit5:>6.2f} {mrr:>7.3f} {mrr / base:>13.2f}")
    if misses:
        print("\nnot in the hybrid top 5:", *misses, sep="\n  ")


if __name__ == "__main__":
    main()
