from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.roles import Role
from accounts.services import user_roles_set
from voice.services import (
    EventRecord,
    conversation_end,
    conversation_events_append,
    conversation_start,
)


@pytest.fixture(autouse=True)
async def close_db_connections_of_worker_threads():
    """Views under the async client reach the database from asgiref's thread: close that
    connection after each test, or the test database cannot be dropped at the end."""
    yield
    from channels.db import database_sync_to_async
    from django.db import connections

    await database_sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def fresh_filter_menus():
    """The auditor's filter menus are cached for minutes; each test starts without them."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def person(db):
    def make(username: str, *roles: Role) -> Any:
        user = get_user_model().objects.create_user(username)
        user_roles_set(user=user, roles=roles)
        return user

    return make


@pytest.fixture
def client_of():
    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def talk(db):
    """Store a conversation the way the gateway does: (kind, data) records in order."""

    def make(
        user: Any,
        records: list[tuple[str, dict[str, Any]]],
        *,
        model: str = "gpt-realtime",
        provider: str = "azure",
        end_reason: str = "client_closed",
    ) -> Any:
        conversation = conversation_start(user=user, provider=provider, model=model)
        now = time.time()
        conversation_events_append(
            conversation=conversation,
            events=[
                EventRecord(n, kind, now + n / 10, data, str(data.get("item_id") or ""))
                for n, (kind, data) in enumerate(records, start=1)
            ],
        )
        conversation_end(conversation=conversation, reason=end_reason)
        conversation.refresh_from_db()
        return conversation

    return make


def leave_talk(
    question: str = "How many days of paid leave do I get?",
) -> list[tuple[str, dict[str, Any]]]:
    """A question answered from the leave policy, interrupted after 1.2 s."""
    return [
        ("transcript", {"item_id": "k_q", "role": "user", "text": question}),
        (
            "tool_call",
            {
                "name": "search_knowledge",
                "arguments": '{"query": "paid leave"}',
                "document_ids": ["d-leave"],
                "error": None,
            },
        ),
        (
            "usage",
            {
                "status": "completed",
                "input_tokens": 300,
                "output_tokens": 20,
                "input_text_tokens": 300,
                "input_audio_tokens": 0,
                "input_cached_tokens": 0,
                "output_text_tokens": 20,
                "output_audio_tokens": 0,
            },
        ),
        (
            "citations",
            {
                "item_id": "k_a",
                "document_ids": ["d-leave"],
                "passages": [
                    {
                        "document_id": "d-leave",
                        "version": 2,
                        "title": "Leave and Holidays",
                        "location": "Annual paid leave",
                        "text": "Twenty days a year.",
                    }
                ],
            },
        ),
        ("latency", {"item_id": "k_a", "ms": 640}),
        (
            "transcript",
            {"item_id": "k_a", "role": "assistant", "text": "You get twenty days a year."},
        ),
        (
            "usage",
            {
                "status": "completed",
                "item_id": "k_a",
                "input_tokens": 400,
                "output_tokens": 100,
                "input_text_tokens": 350,
                "input_audio_tokens": 50,
                "input_cached_tokens": 0,
                "output_text_tokens": 20,
                "output_audio_tokens": 80,
            },
        ),
        (
            "truncated",
            {
                "item_id": "k_a",
                "audio_end_ms": 1200,
                "received_ms": 3000,
                "heard_text": "You get twenty",
            },
        ),
        ("ended", {"reason": "client_closed"}),
    ]
