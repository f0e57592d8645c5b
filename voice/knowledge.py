"""The gateway's side of the knowledge base: the search_knowledge tool, bound to one user.

The search itself is a selector of the knowledge app, named by settings.KOE_KNOWLEDGE_SEARCH
and called as search(user=..., query=..., k=...) -> list of passages with document_id, title,
text, location and url. Access control is the selector's: it is always given the acting user.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string

from voice.realtime.tools import Citation, ToolFunction, ToolOutcome

MAX_PASSAGES = 5


@dataclass(frozen=True)
class Passage:
    document_id: str
    title: str
    text: str
    location: str = ""
    url: str = ""
    document_version: int = 0


class KnowledgeSearch(Protocol):
    def __call__(self, *, user: Any, query: str, k: int) -> Sequence[Passage]: ...


def knowledge_search_unavailable(*, user: Any, query: str, k: int) -> Sequence[Passage]:
    """Used until a knowledge base is configured: finds nothing."""
    return []


def search_knowledge_tool(*, user: Any) -> ToolFunction:
    """The search_knowledge tool for this user's session."""
    search: KnowledgeSearch = import_string(settings.KOE_KNOWLEDGE_SEARCH)
    # Not thread-sensitive: one slow search must not queue every other socket's database work.
    run_search = database_sync_to_async(search, thread_sensitive=False)

    async def tool(arguments: dict[str, Any]) -> ToolOutcome:
        query = str(arguments.get("query") or "").strip()[:500]
        if not query:
            return ToolOutcome(output=json.dumps({"error": "query is empty"}), error="empty query")
        passages = list(await run_search(user=user, query=query, k=MAX_PASSAGES))[:MAX_PASSAGES]
        if not passages:
            return ToolOutcome(
                output=json.dumps(
                    {"passages": [], "note": "Nothing relevant found: say you do not know."}
                )
            )
        return ToolOutcome(
            output=json.dumps(
                {
                    "passages": [
                        {"source": p.title, "where": p.location, "text": p.text} for p in passages
                    ]
                },
                ensure_ascii=False,
            ),
            citations=tuple(
                Citation(
                    document_id=p.document_id,
                    title=p.title,
                    passage=p.text[:600],
                    location=p.location,
                    url=p.url,
                    document_version=getattr(p, "document_version", 0),
                )
                for p in passages
            ),
        )

    return tool
