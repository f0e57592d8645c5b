"""TranscriptionSession against the scripted Realtime server: segments timed in the meeting,
pause and resume, and fresh model sessions that take over without losing a word."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from voice.realtime.browser_protocol import BYTES_PER_MS
from voice.realtime.providers import (
    ProviderConfig,
    ProviderKind,
    auth_headers_factory,
    realtime_url,
    upstream_connector,
)
from voice.realtime.transcription import Segment, TranscriptionSession, TranscriptionSettings
from voice.tests.fake_upstream import FakeUpstream


def tone(value: int, ms: int) -> bytes:
    """PCM told apart by its sample values, so resent audio can be traced."""
    return bytes([value, 0]) * (ms * BYTES_PER_MS // 2)


@dataclass
class Meeting:
    session: TranscriptionSession
    task: asyncio.Task[None]
    emitted: list[dict[str, Any]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    rollovers: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.emitted if e.get("type") == kind]

    async def wait(self, predicate, within: float = 5.0) -> None:
        async def poll() -> None:
            while not predicate():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), within)

    async def stop(self) -> None:
        await self.session.close()
        await asyncio.wait_for(self.task, 5)


async def meeting(fake: FakeUpstream, gate: Any = None, **overrides: Any) -> Meeting:
    config = ProviderConfig(
        kind=ProviderKind.LOCAL, endpoint=fake.url.split("?")[0], model="m", api_key="k"
    )
    settings = TranscriptionSettings(connect_backoff_s=0.01, **overrides)
    box: dict[str, Meeting] = {}

    async def emit(event: dict[str, Any]) -> None:
        box["m"].emitted.append(event)

    session = TranscriptionSession(
        connect=upstream_connector(config, auth_headers_factory(config), intent="transcription"),  # type: ignore[arg-type]
        settings=settings,
        emit=emit,
        segment=lambda s: box["m"].segments.append(s),
        rollover=lambda reason: box["m"].rollovers.append(reason),
        reconnect_gate=gate,
    )
    box["m"] = Meeting(session=session, task=asyncio.create_task(session.run()))
    return box["m"]


async def speak_segment(
    fake: FakeUpstream, item: str, start: int, end: int, text: str, *, deltas: bool = True
) -> None:
    """What the model sends for one stretch of speech it heard, pause included."""
    await fake.push(
        {"type": "input_audio_buffer.speech_started", "item_id": item, "audio_start_ms": start}
    )
    await fake.push(
        {"type": "input_audio_buffer.speech_stopped", "item_id": item, "audio_end_ms": end}
    )
    await fake.push({"type": "input_audio_buffer.committed", "item_id": item})
    if deltas:
        for word in text.split(" "):
            await fake.push(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item,
                    "delta": word + " ",
                }
            )
    await fake.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item,
            "transcript": text,
        }
    )


def test_transcription_sessions_are_asked_for_in_the_url():
    config = ProviderConfig(
        kind=ProviderKind.OPENAI,
        endpoint="https://api.openai.com",
        model="gpt-realtime",
        api_key="k",
    )
    assert realtime_url(config, intent="transcription") == (
        "wss://api.openai.com/v1/realtime?intent=transcription"
    )
    azure = ProviderConfig(
        kind=ProviderKind.AZURE, endpoint="https://r.openai.azure.com", model="d", api_key="k"
    )
    assert realtime_url(azure, intent="transcription") == (
        "wss://r.openai.azure.com/openai/v1/realtime?intent=transcription"
    )


async def test_the_server_sets_a_transcription_session_and_segments_are_timed(fake):
    m = await meeting(fake, model="gpt-4o-transcribe", language="ja")
    conn = await fake.wait_for("session.update")
    assert "intent=transcription" in conn.path
    session = conn.of_type("session.update")[0]["session"]
    assert session["type"] == "transcription"
    assert "instructions" not in session and "tools" not in session
    assert session["audio"]["input"]["transcription"] == {
        "model": "gpt-4o-transcribe",
        "language": "ja",
    }
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    await m.wait(lambda: m.session._ready.is_set())
    await m.session.audio(tone(2, 3000))
    await fake.wait_for("input_audio_buffer.append")

    await speak_segment(fake, "item_a", 400, 2100, "We agreed to ship on Friday.")
    await m.wait(lambda: len(m.segments) == 1)

    assert m.segments == [Segment("s1", 400, 2100, "We agreed to ship on Friday.")]
    deltas = m.of("segment.delta")
    assert [d["delta"] for d in deltas] == ["We ", "agreed ", "to ", "ship ", "on ", "Friday. "]
    assert {d["segment_id"] for d in deltas} == {"s1"} and deltas[0]["start_ms"] == 400
    done = m.of("segment.done")[0]
    assert done == {
        "type": "segment.done",
        "segment_id": "s1",
        "start_ms": 400,
        "end_ms": 2100,
        "text": "We agreed to ship on Friday.",
        "speaker": "",
        "failed": False,
    }
    assert [e["speaking"] for e in m.of("speech")] == [True, False]
    await m.stop()


async def test_empty_transcripts_are_not_segments(fake):
    m = await meeting(fake)
    await m.wait(lambda: m.session._ready.is_set())
    await speak_segment(fake, "item_a", 0, 500, "", deltas=False)
    await speak_segment(fake, "item_b", 900, 1500, "Next topic.")
    await m.wait(lambda: len(m.segments) == 1)
    assert [s.text for s in m.segments] == ["Next topic."]
    assert m.segments[0].segment_id == "s2"
    await m.stop()


async def test_pause_cuts_a_segment_and_nothing_is_heard_until_resume(fake):
    fake.user_transcript = "Before the pause."
    m = await meeting(fake)
    await m.wait(lambda: m.session._ready.is_set())
    await m.session.audio(tone(2, 1000))
    await fake.wait_for("input_audio_buffer.append")
    await m.session.pause()
    await fake.wait_for("input_audio_buffer.commit")
    await m.wait(lambda: len(m.segments) == 1)
    assert m.segments[0].text == "Before the pause."
    assert (m.segments[0].start_ms, m.segments[0].end_ms) == (0, 1000)

    appended = len(fake.current.of_type("input_audio_buffer.append"))
    await m.session.audio(tone(3, 1000))  # said during the pause: not recorded
    await m.session.resume()
    await m.session.audio(tone(4, 500))
    await fake.wait_for("input_audio_buffer.append", count=appended + 1)
    assert set(fake.current.audio) == {4, 0}
    assert [e["status"] for e in m.of("status")] == ["listening", "paused", "listening"]
    await m.stop()


@pytest.mark.parametrize("fault", ["expire", "drop"])
async def test_a_fresh_session_takes_over_mid_speech_without_losing_audio(fake, fault):
    m = await meeting(fake)
    await m.wait(lambda: m.session._ready.is_set())
    second = tone(3, 1000)
    for value in (2, 3):  # two seconds in 100 ms frames, as a browser sends them
        for _ in range(10):
            await m.session.audio(tone(value, 100))
    await fake.wait_for("input_audio_buffer.append", count=20)
    # The first second is a transcribed segment; speech began again at 1.2 s and goes on.
    await speak_segment(fake, "item_a", 100, 1000, "First point.")
    await m.wait(lambda: len(m.segments) == 1)
    await fake.push(
        {"type": "input_audio_buffer.speech_started", "item_id": "item_b", "audio_start_ms": 1200}
    )
    await fake.push(
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "item_b",
            "delta": "Second",
        }
    )
    await m.wait(lambda: len(m.of("segment.delta")) == 3)

    await (fake.expire() if fault == "expire" else fake.drop())
    # Said while the fresh session opens: held, then sent after the resent audio.
    during = tone(5, 200)
    await m.session.audio(during)
    await fake.wait_connections(2)
    await m.wait(lambda: m.of("notice") != [])
    await fake.wait_for("input_audio_buffer.append", count=11)

    # Everything from the end of the transcribed segment on reaches the fresh session.
    assert bytes(fake.current.audio) == second + during
    assert m.rollovers == ["session_expired" if fault == "expire" else "upstream_dropped"]
    # The words shown of the cut segment are withdrawn; the fresh session says it again.
    assert m.of("segment.discarded") == [{"type": "segment.discarded", "segment_id": "s2"}]
    await speak_segment(fake, "item_c", 200, 900, "Second point.")
    await m.wait(lambda: len(m.segments) == 2)
    # Timed in the meeting: the fresh session's zero is the meeting's 1,000 ms.
    assert (m.segments[1].start_ms, m.segments[1].end_ms) == (1200, 1900)
    assert m.segments[1].segment_id != m.segments[0].segment_id
    assert "reconnecting" in [e["status"] for e in m.of("status")]
    await m.stop()


async def test_the_planned_rollover_waits_for_the_segment_being_transcribed(fake):
    # Sessions of 1 s with a 0.5 s margin: the planned moment comes after half a second.
    m = await meeting(fake, max_session_seconds=1.0, rollover_margin_s=0.5)
    await m.wait(lambda: m.session._ready.is_set())
    await m.session.audio(tone(2, 1000))
    await fake.push(
        {"type": "input_audio_buffer.speech_started", "item_id": "item_a", "audio_start_ms": 0}
    )
    await asyncio.sleep(1.0)
    assert len(fake.connections) == 1  # someone is speaking: no rollover
    await speak_segment(fake, "item_a", 0, 800, "Long sentence.")
    await fake.wait_connections(2)
    assert [s.text for s in m.segments] == ["Long sentence."]
    assert m.rollovers == ["max_session_age"]
    assert m.of("segment.discarded") == []
    await m.stop()


async def test_settings_the_model_refuses_end_the_meeting_with_its_reason(fake):
    fake.refuse_policy = True
    m = await meeting(fake, language="xx")
    await asyncio.wait_for(m.task, 5)
    assert m.session.end_reason == "settings_refused"
    error = m.of("error")[0]
    assert error["code"] == "transcription_refused"
    assert "Invalid value" not in error["message"]  # the model's own words stay in the log
    assert len(fake.connections) == 1  # refused settings are not retried


async def test_no_model_at_all_ends_the_meeting_as_unavailable(fake):
    fake.refuse_connections = True
    m = await meeting(fake)
    await asyncio.wait_for(m.task, 5)
    assert m.session.end_reason == "upstream_unavailable"
    assert m.of("error")[0]["code"] == "upstream_unavailable"


async def test_stopping_with_drain_waits_for_the_last_words(fake):
    m = await meeting(fake)
    await m.wait(lambda: m.session._ready.is_set())
    await m.session.audio(tone(2, 800))
    await fake.wait_for("input_audio_buffer.append")
    fake.user_transcript = "Last words."
    await m.session.close("client_closed", drain_s=3)
    await asyncio.wait_for(m.task, 5)
    assert [s.text for s in m.segments] == ["Last words."]


async def test_stopping_with_nothing_heard_does_not_wait_and_a_second_close_is_a_no_op(fake):
    m = await meeting(fake)
    await m.wait(lambda: m.session._ready.is_set())
    # Nothing waits for words: the drain allowance is not spent (30 s would outlast this).
    await asyncio.wait_for(m.session.close("client_closed", drain_s=30), 5)
    await asyncio.wait_for(m.session.close("server_shutdown", drain_s=30), 5)
    await asyncio.wait_for(m.task, 5)
    assert m.session.end_reason == "client_closed"
    assert fake.current.of_type("input_audio_buffer.commit") == []


async def test_a_segment_heard_again_after_a_rollover_is_stored_once(fake):
    gate_calls: list[int] = []

    async def gate() -> float:
        gate_calls.append(1)
        return 0.0

    m = await meeting(fake, gate=gate)
    await m.wait(lambda: m.session._ready.is_set())
    for _ in range(20):
        await m.session.audio(tone(2, 100))
    await fake.wait_for("input_audio_buffer.append", count=20)
    # A (0.1-0.9 s) is still being transcribed when B (1.0-1.8 s) is done.
    await fake.push(
        {"type": "input_audio_buffer.speech_started", "item_id": "a", "audio_start_ms": 100}
    )
    await fake.push(
        {"type": "input_audio_buffer.speech_stopped", "item_id": "a", "audio_end_ms": 900}
    )
    await fake.push({"type": "input_audio_buffer.committed", "item_id": "a"})
    await speak_segment(fake, "b", 1000, 1800, "Second.")
    await m.wait(lambda: len(m.segments) == 1)
    await fake.expire()
    await fake.wait_connections(2)
    await fake.wait_for("input_audio_buffer.append", count=19)
    # The fresh session gets A's audio again, and B's after it: it hears both.
    assert len(fake.current.audio) == 1900 * BYTES_PER_MS
    await speak_segment(fake, "a2", 0, 800, "First.")
    await speak_segment(fake, "b2", 900, 1700, "Second.")
    await m.wait(lambda: len(m.segments) == 2)
    await asyncio.sleep(0.2)
    assert [(s.text, s.start_ms) for s in m.segments] == [("Second.", 1000), ("First.", 100)]
    assert gate_calls == [1]  # the fresh session asked the shared connection rate first
    await m.stop()


async def test_a_segment_the_model_could_not_transcribe_is_kept_as_such(fake):
    m = await meeting(fake)
    await m.wait(lambda: m.session._ready.is_set())
    await m.session.audio(tone(2, 1000))
    await fake.push(
        {"type": "input_audio_buffer.speech_started", "item_id": "x", "audio_start_ms": 0}
    )
    await fake.push(
        {"type": "input_audio_buffer.speech_stopped", "item_id": "x", "audio_end_ms": 700}
    )
    await fake.push({"type": "input_audio_buffer.committed", "item_id": "x"})
    await fake.push({"type": "conversation.item.input_audio_transcription.failed", "item_id": "x"})
    await m.wait(lambda: len(m.segments) == 1)
    assert m.segments[0] == Segment("s1", 0, 700, "", failed=True)
    await m.stop()
