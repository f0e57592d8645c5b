"""Employee pages of the knowledge base: search, a passage, a document's file.

Thin: every read is a selector given request.user. A document the user may not read answers
404, exactly like one that does not exist.
"""

from __future__ import annotations

import logging
import mimetypes

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.roles import Role
from accounts.selectors import user_roles
from knowledge.models import Chunk, Document
from knowledge.selectors import SearchHit, chunk_search, document_file_get, passage_get

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 500
RESULTS = 10
READERS = frozenset({Role.EMPLOYEE, Role.KNOWLEDGE_ADMIN})


def _may_read(request: HttpRequest) -> bool:
    return bool(READERS & user_roles(user=request.user))


def _no_access(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/no_access.html", status=403)


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    if not _may_read(request):
        return _no_access(request)
    query = request.GET.get("q", "").strip()[:MAX_QUERY_CHARS]
    hits: list[SearchHit] = []
    failed = False
    if query:
        try:
            hits = chunk_search(user=request.user, query=query, k=RESULTS)
        except Exception:
            # The page stays usable; the log has the cause.
            logger.exception("knowledge search failed")
            failed = True
    return render(
        request,
        "knowledge/search.html",
        {"query": query, "hits": hits, "failed": failed, "max_chars": MAX_QUERY_CHARS},
        status=503 if failed else 200,
    )


@require_GET
def passage(request: HttpRequest, document_id: str, order: int) -> HttpResponse:
    if not _may_read(request):
        return _no_access(request)
    try:
        context = passage_get(user=request.user, document_id=str(document_id), order=order)
    except Chunk.DoesNotExist as exc:
        raise Http404("No such passage.") from exc
    return render(request, "knowledge/passage.html", {"c": context})


@require_GET
def document_file(request: HttpRequest, document_id: str) -> FileResponse:
    if not _may_read(request):
        raise Http404("No such document.")
    try:
        document = document_file_get(user=request.user, document_id=str(document_id))
    except Document.DoesNotExist as exc:
        raise Http404("No such document.") from exc
    content_type = mimetypes.guess_type(document.original_name)[0] or "application/octet-stream"
    try:
        handle = document.file.open("rb")
    except FileNotFoundError as exc:
        logger.error("file of document %s is missing from storage", document.public_id)
        raise Http404("The file of this document is no longer stored.") from exc
    # Always an attachment: an uploaded HTML file must never run in Koe's origin.
    return FileResponse(
        handle,
        as_attachment=True,
        filename=document.original_name,
        content_type=content_type,
    )
