"""The minutes socket through Koe's whole ASGI stack, with the scripted Realtime server as the
model: who may take minutes, segments recorded as they come, pause, stop and the sealed record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.roles import Role
from minutes.models import Minutes
from portal.asgi import application
from voice.models import Conversation, ConversationEvent
from voice.selectors import conversation_chain_problems
from voice.tests.fake_upstream import FakeUpstream
from voice.tests.test_consumers import ORIGIN, collect_until, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

PCM = b"\x02\x00" * 960  # 40 ms


async def open_minutes(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/ws/minutes/", headers=[ORIGIN, *headers])
    connected, _ = await comm.connect(timeout=10)
    assert connected
    return comm


async def ready(comm: WebsocketCommunicator) -> dict[str, Any]:
    frames = await collect_until(comm, lambda f: isinstance(f, dict) and f["type"] == "ready")
    return frames[-1]


async def say(fake: FakeUpstream, item: str, start: int, end: int, text: str) -> None:
    for event in (
        {"type": "input_audio_buffer.speech_started", "item_id": item, "audio_start_ms": start},
        {"type": "input_audio_buffer.speech_stopped", "item_id": item, "audio_end_ms": end},
        {"type": "input_audio_buffer.committed", "item_id": item},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item,
            "transcript": text,
        },
    ):
        await fake.push(event)


async def test_anonymous_and_foreign_sockets_are_refused(fake):
    comm = WebsocketCommunicator(application, "/ws/minutes/", headers=[ORIGIN])
    assert (await comm.connect(timeout=10))[0]
    frames = await collect_until(comm, lambda f: False)
    assert frames[0]["code"] == "not_signed_in"
    assert frames[-1]["code"] == 4401

    cookie = await session_cookie("mallory", Role.EMPLOYEE)
    foreign = WebsocketCommunicator(
        application, "/ws/minutes/", headers=[(b"origin", b"https://evil.example"), cookie]
    )
    assert not (await foreign.connect(timeout=10))[0]
    assert fake.connections == []


async def test_a_meeting_is_transcribed_recorded_and_sealed(fake):
    comm = await open_minutes(await session_cookie("aiko", Role.EMPLOYEE))
    hello = await ready(comm)
    assert hello["url"].startswith("/minutes/") and hello["language"] == ""
    conn = await fake.wait_for("session.update")
    assert "intent=transcription" in conn.path
    assert conn.of_type("session.update")[0]["session"]["type"] == "transcription"

    for _ in range(25):  # one second of audio
        await comm.send_to(bytes_data=PCM)
    await fake.wait_for("input_audio_buffer.append", count=25)
    await say(fake, "item_1", 80, 900, "Welcome to the planning meeting.")
    frames = await collect_until(comm, lambda f: f.get("type") == "segment.done")
    assert frames[-1]["text"] == "Welcome to the planning meeting."
    assert (frames[-1]["start_ms"], frames[-1]["end_ms"]) == (80, 900)

    fake.user_transcript = "Let us take a break."
    await comm.send_to(text_data=json.dumps({"type": "pause"}))
    frames = await collect_until(comm, lambda f: f.get("status") == "paused")
    # The words since the last pause in speech become a segment at once.
    await collect_until(comm, lambda f: f.get("type") == "segment.done")
    await comm.send_to(bytes_data=PCM)  # during the pause: not sent
    await comm.send_to(text_data=json.dumps({"type": "resume"}))
    await collect_until(comm, lambda f: f.get("status") == "listening")
    for _ in range(10):
        await comm.send_to(bytes_data=PCM)
    await fake.wait_for("input_audio_buffer.append", count=35)
    fake.user_transcript = "And that is all for today."
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    frames = await collect_until(comm, lambda f: f.get("type") == "websocket.close", within=20)
    stopped = [f for f in frames if f.get("type") == "stopped"]
    assert stopped == [{"type": "stopped", "url": hello["url"]}]
    assert frames[-1]["code"] == 1000
    await comm.disconnect()  # the browser answers the close
    # The stop asked the model for the last words and waited for them.
    assert [f["text"] for f in frames if f.get("type") == "segment.done"] == [
        "And that is all for today."
    ]
    assert len(fake.connections[0].of_type("input_audio_buffer.append")) == 35

    @database_sync_to_async
    def stored() -> tuple[Conversation, list[dict[str, Any]]]:
        minutes = Minutes.objects.select_related("conversation").get()
        events = ConversationEvent.objects.filter(
            conversation=minutes.conversation, event_type="segment"
        ).order_by("sequence")
        return minutes.conversation, [e.data for e in events]

    conversation, segments = await stored()
    assert conversation.kind == Conversation.Kind.MINUTES
    assert conversation.ended_at is not None and conversation.end_reason == "client_closed"
    assert [s["text"] for s in segments] == [
        "Welcome to the planning meeting.",
        "Let us take a break.",
        "And that is all for today.",
    ]
    assert (segments[1]["start_ms"], segments[1]["end_ms"]) == (900, 1000)
    # After the pause the meeting clock goes on where it stopped: 1,000 ms + 400 ms.
    assert (segments[2]["start_ms"], segments[2]["end_ms"]) == (1000, 1400)
    problems = await database_sync_to_async(lambda: list(conversation_chain_problems()))()
    assert problems == []
    assert hello["url"] == f"/minutes/{conversation.public_id}/"


async def test_commands_other_than_pause_resume_stop_are_refused(fake):
    comm = await open_minutes(await session_cookie("ken", Role.EMPLOYEE))
    await ready(comm)
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "summarise please"}))
    frames = await collect_until(comm, lambda f: f.get("type") == "error")
    assert frames[-1]["code"] == "unknown_type"
    assert "pause, resume, stop" in frames[-1]["message"]
    await comm.send_to(text_data=json.dumps({"type": "pause", "session": {"instructions": "x"}}))
    frames = await collect_until(comm, lambda f: f.get("type") == "error")
    assert frames[-1]["code"] == "invalid_message"
    await comm.disconnect()


async def test_without_the_employee_role_no_minutes(fake):
    comm = await open_minutes(await session_cookie("guest"))
    frames = await collect_until(comm, lambda f: False)
    assert frames[0]["code"] == "no_role"
    assert frames[-1]["code"] == 4403


async def test_a_language_the_offline_engine_lacks_is_refused_in_the_users_language(fake, settings):
    settings.KOE_TRANSCRIPTION_LANGUAGE = "fr"  # the site's default: French
    cookie = await session_cookie("haru", Role.EMPLOYEE)
    comm = await open_minutes(cookie, (b"accept-language", b"ja,en;q=0.5"))
    frames = await collect_until(comm, lambda f: False)
    assert frames[0]["code"] == "language_unavailable"
    assert "français" in frames[0]["message"]
    assert "オフライン" in frames[0]["message"]  # said in the page's language
    assert frames[-1]["code"] == 4502
    assert fake.connections == []  # refused before any model session was opened
