"""Reads of the knowledge base. Every one takes the acting user: there is no unfiltered path."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast
from django.urls import reverse
from pgvector.django import CosineDistance, HalfVectorField

from accounts.roles import Role
from accounts.selectors import user_roles
from knowledge.embeddings import Embedder, EmbeddingError, embedder_default
from knowledge.models import Chunk, Document

logger = logging.getLogger(__name__)

RRF_K = 60  # the usual reciprocal-rank-fusion constant
CANDIDATES = 40  # per ranking, before fusion
TRIGRAM_MIN = 0.3
EF_SEARCH = 400
_TERM = re.compile(r"[^\W_]{2,}")  # words of two letters or digits and more
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
# Question words that every passage would match; a spoken question is full of them.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "many",
        "much",
        "my",
        "of",
        "on",
        "or",
        "our",
        "the",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: str  # the document's public id
    title: str
    text: str
    heading_path: tuple[str, ...]
    page: int | None
    score: float
    order: int
    document_version: int = 0  # the version the passage was indexed from

    @property
    def url(self) -> str:
        """The passage view: it checks access again, so a forwarded link shows nobody else."""
        return reverse("knowledge:passage", args=[self.document_id, self.order])

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


def documents_manageable(*, user: Any) -> QuerySet[Document]:
    """Documents the user may manage in the admin: all for knowledge admins and superusers
    (who administer Koe with or without the role), none for anyone else. Reading passages as
    an employee goes through documents_visible, where a superuser has no special rights."""
    if not (user.is_authenticated and user.is_active):
        return Document.objects.none()
    if user.is_superuser or Role.KNOWLEDGE_ADMIN in user_roles(user=user):
        return Document.objects.all()
    return Document.objects.none()


def chunk_search(
    *, user: Any, query: str, k: int = 5, embedder: Embedder | None = None
) -> list[SearchHit]:
    """The k best passages for the user: vector and word/trigram rankings fused by RRF."""
    query = query.strip()
    if not query or k <= 0:
        return []
    embedder = embedder or embedder_default()
    limit = max(CANDIDATES, k)
    try:
        vector = embedder.query(query)
    except EmbeddingError:
        # A remote embedding service that is down must not take search with it.
        logger.warning("query embedding failed; searching by words only", exc_info=True)
        by_vector = []
    else:
        by_vector = chunk_ids_by_vector(user=user, vector=vector, embedder=embedder, limit=limit)
    by_text = chunk_ids_by_words(user=user, query=query, limit=limit)
    scores = rrf_fuse([by_vector, by_text])
    best = sorted(scores, key=lambda pk: scores[pk], reverse=True)[:k]
    chunks = (
        Chunk.objects.select_related("document").defer("embedding", "search_vector").in_bulk(best)
    )
    return [
        SearchHit(
            chunk_id=pk,
            document_id=str(chunks[pk].document.public_id),
            title=chunks[pk].document.title,
            text=chunks[pk].text,
            heading_path=tuple(chunks[pk].heading_path or ()),
            page=chunks[pk].page,
            score=round(scores[pk], 6),
            order=chunks[pk].order,
            document_version=chunks[pk].document_version,
        )
        for pk in best
    ]


def rrf_fuse(rankings: list[list[int]]) -> dict[int, float]:
    """Reciprocal rank fusion: each ranking adds 1 / (RRF_K + position) to its passages."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for position, pk in enumerate(ranking, start=1):
            scores[pk] = scores.get(pk, 0.0) + 1.0 / (RRF_K + position)
    return scores


def _visible_chunks(*, user: Any) -> QuerySet[Chunk]:
    visible = documents_visible(user=user).filter(pk=OuterRef("document_id"))
    # The access filter is part of the query itself, never applied to results afterwards.
    return Chunk.objects.filter(Exists(visible))


def chunk_ids_by_vector(
    *, user: Any, vector: list[float], embedder: Embedder, limit: int, exact: bool = False
) -> list[int]:
    """Ids of the user's passages nearest to `vector` (cosine), from the model's HNSW index.

    Only passages of the same model and size are compared. `exact` skips the index (a full
    scan), for measuring the index's recall.
    """
    typed = Cast("embedding", HalfVectorField(dimensions=embedder.dimensions))
    nearest = (
        _visible_chunks(user=user)
        .filter(embedding_model=embedder.model, embedding_dimensions=embedder.dimensions)
        .annotate(distance=CosineDistance(typed, vector))
        .order_by("distance")
        .values_list("pk", flat=True)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Filtered HNSW scans come back short unless they may keep scanning.
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        # The graph walk's candidate list. pgvector's default (40) is just Koe's candidate
        # count; with a narrow access filter that cost recall (bench/retrieval.py: 0.86 at 100,
        # 0.97 at 400 for a reader who sees 10% of the passages).
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(EF_SEARCH)])
        if exact:
            cursor.execute("SET LOCAL enable_indexscan = off")
        return list(nearest[:limit])


def chunk_ids_by_words(*, user: Any, query: str, limit: int) -> list[int]:
    """Ids of the user's passages that share words with the query (full text), or, for
    Japanese and Chinese, written without spaces, that look alike (trigrams)."""
    # Words work whatever model embedded a passage, so during a re-index to a new model
    # every document stays findable.
    terms = [t for t in _TERM.findall(query.lower()) if t not in _STOPWORDS]
    cjk = bool(_CJK.search(query))
    if not terms and not cjk:
        return []
    # Any of the words, not all of them: a spoken question has many words no passage repeats.
    words = SearchQuery(" | ".join(terms) or "''", config="simple", search_type="raw")
    condition = Q(search_vector=words) if terms else Q(pk__in=[])
    if cjk:
        # `%>` is answered by the trigram GIN index; a threshold on the similarity function
        # would compute it for every passage.
        condition |= Q(text__trigram_word_similar=query)
    matching = (
        _visible_chunks(user=user)
        .filter(condition)
        .annotate(
            rank=SearchRank(F("search_vector"), words),
            similarity=TrigramWordSimilarity(query, "text") if cjk else Value(0.0),
        )
        .order_by("-rank", "-similarity")
        .values_list("pk", flat=True)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [str(TRIGRAM_MIN)]
        )
        return list(matching[:limit])


@dataclass(frozen=True)
class PassageContext:
    document: Document
    passage: Chunk
    before: Chunk | None
    after: Chunk | None


def passage_get(*, user: Any, document_id: str, order: int) -> PassageContext:
    """One passage of a document the user may read, with its neighbours for context.

    Raises Chunk.DoesNotExist both when there is no such passage and when the user may not
    read the document, so a link does not reveal that a restricted document exists.
    """
    try:
        document = documents_visible(user=user).get(public_id=document_id)
    except (Document.DoesNotExist, ValidationError) as exc:
        raise Chunk.DoesNotExist from exc
    near = {
        c.order: c
        for c in Chunk.objects.filter(
            document=document, order__gte=order - 1, order__lte=order + 1
        ).defer("embedding", "search_vector")
    }
    if order not in near:
        raise Chunk.DoesNotExist
    return PassageContext(
        document=document,
        passage=near[order],
        before=near.get(order - 1),
        after=near.get(order + 1),
    )


def document_file_get(*, user: Any, document_id: str) -> Document:
    """A document the user may read, to download its original file (Document.DoesNotExist else)."""
    try:
        return documents_visible(user=user).get(public_id=document_id)
    except ValidationError as exc:
        raise Document.DoesNotExist from exc
