"""Admission of new voice sessions: per-user concurrency, a global rate of new upstream
connections (Azure has allowed as few as 6 a minute), an optional daily token quota, and how
many conversations this one process carries.

Counters live in Django's cache, which is Redis when REDIS_URL is set, so every worker process
counts against the same limits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy

from voice.selectors import user_tokens_today

# A crashed worker cannot release its slots: they expire after this long at the latest.
SLOT_TTL_S = 4 * 3600


@dataclass(frozen=True)
class Refusal:
    reason: str  # translated when shown (a lazy string), so it is said in the reader's language
    retry_after_s: int


def _user_key(user_id: int) -> str:
    return f"voice:sessions:user:{user_id}"


async def voice_session_admit(*, user_id: int) -> Refusal | None:
    """Take a session slot for the user, or say why not and when to retry."""
    quota = settings.KOE_DAILY_TOKEN_QUOTA
    if quota and await database_sync_to_async(user_tokens_today)(user_id=user_id) >= quota:
        now = time.localtime()
        seconds_to_midnight = 86400 - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)
        return Refusal(cast(str, gettext_lazy("daily token quota used up")), seconds_to_midnight)

    key = _user_key(user_id)
    await cache.aadd(key, 0, timeout=SLOT_TTL_S)
    if await cache.aincr(key) > settings.KOE_MAX_SESSIONS_PER_USER:
        await cache.adecr(key)
        return Refusal(cast(str, gettext_lazy("too many open conversations")), 30)

    refusal = await upstream_connect_allowed()
    if refusal is not None:
        await cache.adecr(key)
    return refusal


async def upstream_connect_allowed() -> Refusal | None:
    """Count one new upstream connection in this minute's window."""
    window = int(time.time() // 60)
    key = f"voice:upstream-connects:{window}"
    await cache.aadd(key, 0, timeout=120)
    if await cache.aincr(key) > settings.KOE_UPSTREAM_CONNECTS_PER_MINUTE:
        return Refusal(
            cast(str, gettext_lazy("the assistant is busy")), 60 - int(time.time() % 60) + 1
        )
    return None


async def voice_session_release(*, user_id: int) -> None:
    key = _user_key(user_id)
    try:
        if await cache.adecr(key) < 0:
            await cache.aset(key, 0, timeout=SLOT_TTL_S)
    except ValueError:
        pass  # expired meanwhile: nothing to give back


# Conversations this process carries (the event loop is one thread: no lock needed).
_process_sessions = {"open": 0}


def process_slot_take() -> bool:
    """Room for one more conversation in this process (KOE_MAX_SESSIONS_PER_PROCESS)? A full
    process refuses, so that the page reconnects to another one, instead of falling behind
    everyone it already carries (bench/gateway.py: past its capacity every frame queues)."""
    limit = settings.KOE_MAX_SESSIONS_PER_PROCESS
    if limit and _process_sessions["open"] >= limit:
        return False
    _process_sessions["open"] += 1
    return True


def process_slot_release() -> None:
    _process_sessions["open"] = max(0, _process_sessions["open"] - 1)
