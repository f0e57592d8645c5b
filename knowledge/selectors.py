"""Reads of the knowledge base. Every one takes the acting user: there is no unfiltered path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, HalfVectorField

from accounts.roles import Role
from accounts.selectors import user_roles
from knowledge.embeddings import Embedder, embedder_default
from knowledge.models import Chunk, Document

RRF_K = 60  # the usual reciprocal-rank-fusion constant
CANDIDATES = 40  # per ranking, before fusion
TRIGRAM_MIN = 0.3


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: str  # the document's public id
    title: str
    text: str
    heading_path: tuple[str, ...]
    page: int | None
    score: float

    @property
    def url(self) -> str:
        # The passage view (access-checked) is not built yet; citations carry no link until then.
        return ""

    @property
    def location(self) -> str:
        parts = [f"p. {self.page}"] if self.page else []
        if self.heading_path:
            parts.append(" > ".join(self.heading_path))
        return " · ".join(parts)


def documents_visible(*, user: Any) -> QuerySet[Document]:
    """Documents the user may read: open to every employee, or shared with one of their groups."""
    roles = user_roles(user=user)
    if Role.KNOWLEDGE_ADMIN in roles:
        return Document.objects.all()
    if Role.EMPLOYEE not in roles:
        return Document.objects.none()
    groups = Group.objects.filter(user__pk=user.pk)
    restricted = Document.allowed_groups.through.objects.filter(document_id=OuterRef("pk"))
    shared = restricted.filter(group__in=groups)
    return Document.objects.filter(~Exists(restricted) | Exists(shared))


def chunk_search(
    *, user: Any, query: str, k: int = 5, embedder: Embedder | None = None
) -> list[SearchHit]:
    """The k best passages for the user: vector and word/trigram rankings fused by RRF."""
    query = query.strip()
    if not query or k <= 0:
        return []
    embedder = embedder or embedder_default()
    visible = documents_visible(user=user).filter(pk=OuterRef("document_id"))
    # The access filter is part of the query itself, never applied to results afterwards.
    base = Chunk.objects.filter(Exists(visible), embedding_model=embedder.model)

    vector = embedder.query(query)
    typed = Cast("embedding", HalfVectorField(dimensions=embedder.dimensions))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Filtered HNSW scans come back short unless they may keep scanning.
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        by_vector = list(
            base.annotate(distance=CosineDistance(typed, vector))
            .order_by("distance")
            .values_list("pk", flat=True)[: max(CANDIDATES, k)]
        )
    words = SearchQuery(query, config="simple", search_type="websearch")
    by_text = list(
        base.annotate(
            rank=SearchRank(F("search_vector"), words),
            similarity=TrigramWordSimilarity(query, "text"),
        )
        .filter(Q(search_vector=words) | Q(similarity__gte=TRIGRAM_MIN))
        .order_by("-rank", "-similarity")
        .values_list("pk", flat=True)[: max(CANDIDATES, k)]
    )
    scores: dict[int, float] = {}
    for ranking in (by_vector, by_text):
        for position, pk in enumerate(ranking, start=1):
            scores[pk] = scores.get(pk, 0.0) + 1.0 / (RRF_K + position)
    best = sorted(scores, key=lambda pk: scores[pk], reverse=True)[:k]
    chunks = Chunk.objects.select_related("document").in_bulk(best)
    return [
        SearchHit(
            chunk_id=pk,
            document_id=str(chunks[pk].document.public_id),
            title=chunks[pk].document.title,
            text=chunks[pk].text,
            heading_path=tuple(chunks[pk].heading_path or ()),
            page=chunks[pk].page,
            score=round(scores[pk], 6),
        )
        for pk in best
    ]
