"""A meeting longer than the model's session: the offline engine's sessions expire every 3 s,
so a 20-second meeting runs through several of them, with sentences cut by the expiry. Every
sentence must come out whole, once, in order, at the time it was said."""

from __future__ import annotations

import asyncio
from typing import Any

from voice.realtime.providers import (
    ProviderConfig,
    ProviderKind,
    auth_headers_factory,
    upstream_connector,
)
from voice.realtime.transcription import Segment, TranscriptionSession, TranscriptionSettings
from voice.tests.engine.conftest import (  # noqa: F401
    engine_models,
    say,
    speaker,
    transcriber,
    transcriber_ja,
)
from voice.tests.engine.test_expiry import FRAME, short_engine, silence  # noqa: F401

SENTENCES = [
    ("The first topic is the office move.", "office move"),
    ("We agreed to use the new building in April.", "april"),
    ("Sato will book the movers by Friday.", "movers"),
    ("The budget for the move is ten thousand dollars.", "budget"),
]
PAUSE_MS = 1200


async def test_a_meeting_outlives_its_model_sessions_without_losing_words(short_engine, say):  # noqa: F811
    config = ProviderConfig(kind=ProviderKind.LOCAL, endpoint=short_engine, model="m", api_key="k")
    segments: list[Segment] = []
    rollovers: list[str] = []
    emitted: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        emitted.append(event)

    session = TranscriptionSession(
        connect=upstream_connector(config, auth_headers_factory(config), intent="transcription"),  # type: ignore[arg-type]
        # No planned rollover: every change of session is the engine's expiry, the worst case.
        settings=TranscriptionSettings(connect_backoff_s=0.05, max_session_seconds=3600),
        emit=emit,
        segment=segments.append,
        rollover=rollovers.append,
    )
    task = asyncio.create_task(session.run())
    assert await session.wait_ready(timeout_s=20)

    meeting = bytearray(silence(700))
    starts = []
    for sentence, _ in SENTENCES:
        starts.append(len(meeting) // 48)
        meeting += say(sentence) + silence(PAUSE_MS)
    meeting += silence(1500)
    assert len(meeting) / 48 > 15_000  # five or more engine sessions

    loop = asyncio.get_running_loop()
    began = loop.time()
    for index, at in enumerate(range(0, len(meeting), FRAME)):
        await session.audio(bytes(meeting[at : at + FRAME]).ljust(FRAME, b"\0"))
        await asyncio.sleep(max(0.0, began + (index + 1) * 0.04 - loop.time()))

    async def all_heard() -> None:
        while len(segments) < len(SENTENCES):
            await asyncio.sleep(0.1)

    await asyncio.wait_for(all_heard(), 60)
    await session.close(drain_s=5)
    await asyncio.wait_for(task, 10)

    assert rollovers.count("session_expired") >= 4
    texts = [s.text.lower() for s in segments]
    assert len(segments) == len(SENTENCES), texts
    for (sentence, key), text in zip(SENTENCES, texts, strict=True):
        assert key in text, (sentence, text)
    # Timed in the meeting, across every change of session (the VAD pads 300 ms ahead).
    for segment, start in zip(segments, starts, strict=True):
        assert abs(segment.start_ms - start) <= 700, (segment, start)
        assert segment.end_ms > segment.start_ms
    assert session.dropped_ms == 0
