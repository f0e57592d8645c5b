"""The offline engine's short session limit hitting the gateway in the middle of a spoken
question: real VAD, speech recognition and speech. (The limit hitting a streaming answer is
in voice/tests/realtime/test_session_faults.py, where the answer's pace is under control: the
engine, like the service, streams an answer much faster than it is spoken.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from voice.realtime.policy import SessionPolicy, TurnMode
from voice.realtime.providers import (
    ProviderConfig,
    ProviderKind,
    auth_headers_factory,
    upstream_connector,
)
from voice.realtime.session import RealtimeSession, Record, SessionSettings
from voice.realtime.tools import ToolBox, ToolOutcome

FRAME = 40 * 48  # 40 ms of PCM16 at 24 kHz, as the page sends it
LEAVE = "Full-time employees receive twenty days of annual paid leave each year."


async def leave_search(arguments: dict[str, Any]) -> ToolOutcome:
    return ToolOutcome(output=json.dumps({"passages": [{"source": "Leave", "text": LEAVE}]}))


@pytest.fixture
async def short_engine(engine_models) -> AsyncIterator[str]:
    """The engine with sessions that expire after 3 seconds; yields its URL."""
    from voice.engine.server import engine_serve

    server = await engine_serve(
        host="127.0.0.1", port=0, key="k", models=engine_models, max_session_seconds=3.0
    )
    port = next(iter(server.sockets)).getsockname()[1]
    yield f"ws://127.0.0.1:{port}/v1/realtime"
    server.close()
    await server.wait_closed()


class Talk:
    """A hands-free conversation through the gateway's session, microphone in real time."""

    def __init__(self, url: str) -> None:
        config = ProviderConfig(kind=ProviderKind.LOCAL, endpoint=url, model="m", api_key="k")
        self.emitted: list[Any] = []
        self.records: list[Record] = []

        async def emit(out: Any) -> None:
            self.emitted.append(out)

        self.session = RealtimeSession(
            connect=upstream_connector(config, auth_headers_factory(config)),  # type: ignore[arg-type]
            policy=SessionPolicy(),
            tools=ToolBox(functions={"search_knowledge": leave_search}, timeout_s=10),
            emit=emit,
            record=self.records.append,
            mode=TurnMode.HANDS_FREE,
            settings=SessionSettings(connect_backoff_s=0.05),
        )
        self.task = asyncio.create_task(self.session.run())

    async def speak(self, pcm: bytes) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index, start in enumerate(range(0, len(pcm), FRAME)):
            await self.session.audio(pcm[start : start + FRAME].ljust(FRAME, b"\0"))
            await asyncio.sleep(max(0.0, started + (index + 1) * 0.04 - loop.time()))

    def transcripts(self, role: str) -> list[dict[str, Any]]:
        return [r.data for r in self.records if r.kind == "transcript" and r.data["role"] == role]

    def rollovers(self) -> list[str]:
        return [r.data["reason"] for r in self.records if r.kind == "rollover"]

    async def until(self, check, within: float = 60) -> None:
        async def poll() -> None:
            while not check():
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), within)

    async def stop(self) -> None:
        await self.session.close()
        await asyncio.wait_for(self.task, 10)


def silence(ms: int) -> bytes:
    return b"\0\0" * 24 * ms


async def test_expiry_in_the_middle_of_a_spoken_question(short_engine, say):
    talk = Talk(short_engine)
    await talk.until(lambda: talk.session._ready.is_set(), 20)
    # The question starts 1.5 s into a 3 s session: the session expires while it is spoken.
    question = say("How many days of paid leave do I get?")
    assert len(question) / 48 > 2000  # long enough to straddle the expiry
    await talk.speak(silence(1500) + question + silence(1500))
    await talk.until(lambda: bool(talk.transcripts("assistant")))
    assert "session_expired" in talk.rollovers()
    # Every word reached the session that answered: it heard the whole question.
    (user,) = talk.transcripts("user")
    assert "paid leave" in user["text"].lower() and "how many" in user["text"].lower()
    assert "twenty days" in talk.transcripts("assistant")[0]["text"]
    await talk.stop()
