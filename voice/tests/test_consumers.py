"""The voice socket end to end: real ASGI stack, real WebSockets upstream, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from accounts.roles import Role
from accounts.services import user_roles_set
from portal.asgi import application
from voice.knowledge import Passage
from voice.models import Conversation, ConversationEvent
from voice.realtime.policy import DEFAULT_INSTRUCTIONS
from voice.tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
SEARCHED: list[tuple[str, str]] = []


def handbook_search(*, user: Any, query: str, k: int) -> list[Passage]:
    """Stands in for the knowledge selector: records who asked, answers from a handbook."""
    SEARCHED.append((user.get_username(), query))
    return [
        Passage(
            document_id="doc-7",
            title="Employee Handbook 2026",
            text="Full-time employees receive 20 days of paid leave per year.",
            location="p. 12 · Leave",
            url="/knowledge/documents/doc-7",
        )
    ]


@pytest.fixture
async def fake(settings) -> AsyncIterator[FakeUpstream]:
    server = await FakeUpstream().start()
    settings.KOE_REALTIME_PROVIDER = "local"
    settings.KOE_LOCAL_REALTIME_URL = server.url.split("?")[0]
    settings.KOE_LOCAL_REALTIME_KEY = "local-secret"
    settings.KOE_KNOWLEDGE_SEARCH = "voice.tests.test_consumers.handbook_search"
    settings.KOE_MAX_SESSIONS_PER_USER = 2
    settings.KOE_UPSTREAM_CONNECTS_PER_MINUTE = 100
    settings.KOE_DAILY_TOKEN_QUOTA = 0
    await database_sync_to_async(cache.clear)()
    SEARCHED.clear()
    yield server
    await server.stop()


@database_sync_to_async
def session_cookie(username: str, *roles: Role) -> tuple[bytes, bytes]:
    user = get_user_model().objects.create_user(username)
    user_roles_set(user=user, roles=roles)
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def connect(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/voice/", headers=[ORIGIN, *headers])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def receive(comm: WebsocketCommunicator, within: float = 5) -> dict[str, Any]:
    return await comm.receive_output(within)


async def collect_until(comm, predicate, within: float = 10) -> list[Any]:
    """Frames (dicts for JSON, bytes for audio) until predicate(frame) holds."""
    frames: list[Any] = []

    async def run() -> None:
        while True:
            message = await comm.receive_output(within)
            if message["type"] == "websocket.close":
                frames.append(message)
                return
            frame = json.loads(message["text"]) if message.get("text") else message["bytes"]
            frames.append(frame)
            if predicate(frame):
                return

    await asyncio.wait_for(run(), within)
    return frames


async def expect_refusal(comm: WebsocketCommunicator, code: int) -> dict[str, Any]:
    error = json.loads((await receive(comm))["text"])
    assert error["type"] == "error"
    close = await receive(comm)
    assert close == {"type": "websocket.close", "code": code, "reason": close["reason"]}
    return {**error, "reason": close["reason"]}


async def test_anonymous_socket_is_accepted_then_closed_4401(fake):
    error = await expect_refusal(await connect(), 4401)
    assert error["code"] == "not_signed_in"
    assert fake.connections == []


async def test_user_without_employee_role_is_closed_4403(fake):
    cookie = await session_cookie("aiko", Role.AUDITOR)
    error = await expect_refusal(await connect(cookie), 4403)
    assert error["code"] == "no_role"
    assert fake.connections == []


async def test_foreign_origin_is_refused(fake):
    cookie = await session_cookie("emi", Role.EMPLOYEE)
    communicator = WebsocketCommunicator(
        application, "/ws/voice/", headers=[(b"origin", b"https://evil.example"), cookie]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert not connected
    assert fake.connections == []


async def test_a_spoken_question_is_answered_from_the_knowledge_base_and_recorded(fake):
    fake.tool_plan = [("search_knowledge", '{"query": "paid leave days"}')]
    fake.answer = lambda conn: "You get 20 days of paid leave, says the Employee Handbook."
    comm = await connect(await session_cookie("emi", Role.EMPLOYEE))
    ready = json.loads((await receive(comm))["text"])
    assert ready["type"] == "ready" and ready["mode"] == "hands_free"

    await comm.send_to(text_data=json.dumps({"type": "mode", "mode": "push_to_talk"}))
    for _ in range(25):  # one second of 40 ms frames
        await comm.send_to(bytes_data=b"\x00\x01" * 960)
    await comm.send_to(text_data=json.dumps({"type": "commit"}))
    frames = await collect_until(
        comm,
        lambda f: (
            isinstance(f, dict) and f["type"] == "transcript.done" and f["role"] == "assistant"
        ),
    )
    frames += await collect_until(comm, lambda f: isinstance(f, dict) and f["type"] == "usage")
    events = [f for f in frames if isinstance(f, dict)]
    raw = "\n".join(json.dumps(e, ensure_ascii=False) for e in events)
    assert DEFAULT_INSTRUCTIONS[:30] not in raw and "search_knowledge" not in raw
    assert "paid leave days" not in raw  # the tool's arguments stay on the server
    assert SEARCHED == [("emi", "paid leave days")]
    assert any(e["type"] == "status" and e["status"] == "searching" for e in events)
    (citations,) = [e for e in events if e["type"] == "citations"]
    assert citations["citations"][0]["title"] == "Employee Handbook 2026"
    assert citations["citations"][0]["location"] == "p. 12 · Leave"
    assert sum(len(f) for f in frames if isinstance(f, bytes)) == 600 * 48

    upstream = fake.current
    assert upstream.headers["authorization"] == "Bearer local-secret"
    assert len(upstream.of_type("input_audio_buffer.append")) == 25
    assert (
        upstream.of_type("session.update")[1]["session"]["audio"]["input"]["turn_detection"] is None
    )

    await comm.disconnect()

    @database_sync_to_async
    def stored() -> tuple[Conversation, list[tuple[str, dict[str, Any]]]]:
        conversation = Conversation.objects.get()
        events = list(
            ConversationEvent.objects.filter(conversation=conversation).values_list(
                "event_type", "data"
            )
        )
        return conversation, events

    conversation, stored_events = await stored()
    assert str(conversation.public_id) == ready["conversation_id"]
    assert conversation.ended_at is not None and conversation.end_reason == "client_closed"
    kinds = [k for k, _ in stored_events]
    assert kinds.count("transcript") == 2 and "tool_call" in kinds and "citations" in kinds
    assert kinds[-1] == "ended"
    tool_call = next(d for k, d in stored_events if k == "tool_call")
    assert tool_call["document_ids"] == ["doc-7"]
    assert json.loads(tool_call["arguments"]) == {"query": "paid leave days"}


async def test_malformed_frames_get_errors_and_the_socket_stays_open(fake):
    comm = await connect(await session_cookie("emi", Role.EMPLOYEE))
    await receive(comm)  # ready
    await comm.send_to(text_data="{oops")
    await comm.send_to(
        text_data=json.dumps({"type": "session.update", "session": {"instructions": "x"}})
    )
    await comm.send_to(bytes_data=b"\x00")
    codes = []
    for _ in range(3):
        frame = json.loads((await receive(comm))["text"])
        codes.append(frame["code"])
    assert codes == ["invalid_json", "unknown_type", "invalid_audio"]
    # Still talking.
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "hello"}))
    frames = await collect_until(
        comm,
        lambda f: (
            isinstance(f, dict) and f["type"] == "transcript.done" and f["role"] == "assistant"
        ),
    )
    assert frames[-1]["text"] == "You get twenty days."
    # The typed question came back as the user's transcript first.
    typed = next(f for f in frames if isinstance(f, dict) and f["type"] == "transcript.done")
    assert typed["role"] == "user" and typed["text"] == "hello"
    assert all(
        e["session"].get("instructions") != "x" for e in fake.current.of_type("session.update")
    )
    await comm.disconnect()


async def test_concurrent_session_limit_closes_4429_with_retry_after(fake, settings):
    settings.KOE_MAX_SESSIONS_PER_USER = 1
    cookie = await session_cookie("emi", Role.EMPLOYEE)
    first = await connect(cookie)
    await receive(first)
    error = await expect_refusal(await connect(cookie), 4429)
    assert error["code"] == "limit_reached" and error["retry_after"] > 0
    assert "retry-after=" in error["reason"]
    await first.disconnect()
    # The slot is free again once the first conversation ends.
    again = await connect(cookie)
    assert json.loads((await receive(again))["text"])["type"] == "ready"
    await again.disconnect()


async def test_global_rate_of_new_upstream_connections(fake, settings):
    settings.KOE_UPSTREAM_CONNECTS_PER_MINUTE = 1
    first = await connect(await session_cookie("emi", Role.EMPLOYEE))
    await receive(first)
    error = await expect_refusal(await connect(await session_cookie("ken", Role.EMPLOYEE)), 4429)
    assert error["message"] == "the assistant is busy"
    await first.disconnect()


async def test_daily_token_quota(fake, settings):
    settings.KOE_DAILY_TOKEN_QUOTA = 100
    cookie = await session_cookie("emi", Role.EMPLOYEE)
    comm = await connect(cookie)
    await receive(comm)
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "hi"}))
    await collect_until(comm, lambda f: isinstance(f, dict) and f["type"] == "usage")
    await comm.disconnect()  # 280 tokens used today
    error = await expect_refusal(await connect(cookie), 4429)
    assert "quota" in error["message"]


async def test_dead_upstream_closes_4502_after_a_clear_message(fake):
    fake.refuse_connections = True
    comm = await connect(await session_cookie("emi", Role.EMPLOYEE))
    frames = await collect_until(comm, lambda f: False, within=20)
    errors = [f for f in frames if isinstance(f, dict) and f.get("type") == "error"]
    assert errors == [
        {
            "type": "error",
            "code": "upstream_unavailable",
            "message": "The assistant is unavailable right now.",
        }
    ]
    assert frames[-1]["type"] == "websocket.close" and frames[-1]["code"] == 4502


async def test_a_database_outage_during_a_conversation_loses_no_record(fake, monkeypatch):
    from django.db import OperationalError

    import voice.recorder
    from voice.services import conversation_events_append

    calls = {"n": 0}

    def down_for_a_while(**kwargs):
        calls["n"] += 1
        if calls["n"] <= 5:
            raise OperationalError("the database system is starting up")
        return conversation_events_append(**kwargs)

    monkeypatch.setattr(voice.recorder, "conversation_events_append", down_for_a_while)
    comm = await connect(await session_cookie("emi", Role.EMPLOYEE))
    await receive(comm)  # ready
    for text in ("first question", "second question"):
        await comm.send_to(text_data=json.dumps({"type": "text", "text": text}))
        await collect_until(comm, lambda f: isinstance(f, dict) and f["type"] == "usage")
    # Closing waits for the pending records (daphne: --application-close-timeout, see koe).
    await comm.disconnect(timeout=20)

    @database_sync_to_async
    def stored() -> list[str]:
        return list(ConversationEvent.objects.values_list("event_type", flat=True))

    kinds = await stored()
    assert calls["n"] > 5, (calls, kinds)
    assert kinds.count("transcript") == 4 and kinds.count("usage") == 2
    assert kinds[-1] == "ended"


async def test_a_failure_while_starting_closes_1011_and_frees_the_slot(fake, settings, monkeypatch):
    from django.db import OperationalError

    import voice.consumers

    settings.KOE_MAX_SESSIONS_PER_USER = 1

    def database_down(**kwargs):
        raise OperationalError("could not connect to server")

    cookie = await session_cookie("emi", Role.EMPLOYEE)
    monkeypatch.setattr(voice.consumers, "conversation_start", database_down)
    comm = await connect(cookie)
    error = await expect_refusal(comm, 1011)
    assert error["code"] == "server_error" and "OperationalError" not in json.dumps(error)
    monkeypatch.undo()
    again = await connect(cookie)
    assert json.loads((await receive(again))["text"])["type"] == "ready"
    await again.disconnect()


async def test_a_rollover_continues_the_same_conversation_record(fake, settings):
    settings.KOE_REALTIME_MAX_SESSION_SECONDS = 1
    comm = await connect(await session_cookie("emi", Role.EMPLOYEE))
    await receive(comm)  # ready
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "first question"}))
    frames = await collect_until(
        comm, lambda f: isinstance(f, dict) and f["type"] == "notice", within=10
    )
    assert frames[-1] == {"type": "notice", "notice": "reconnected"}
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "second question"}))
    await collect_until(comm, lambda f: isinstance(f, dict) and f["type"] == "usage")
    await comm.disconnect()

    @database_sync_to_async
    def stored() -> tuple[int, list[str]]:
        return Conversation.objects.count(), list(
            ConversationEvent.objects.values_list("event_type", flat=True)
        )

    conversations, kinds = await stored()
    assert conversations == 1
    assert "rollover" in kinds and kinds.count("usage") == 2
    assert len(fake.connections) >= 2


async def test_an_upstream_killed_mid_answer_is_replaced_and_the_record_keeps_every_turn(fake):
    fake.answer = lambda conn: "Twenty days of paid leave a year, and five more after ten years."
    fake.answer_audio_ms = 2000
    fake.chunk_delay_s = 0.1
    comm = await connect(await session_cookie("emi", Role.EMPLOYEE))
    ready = json.loads((await receive(comm))["text"])
    await comm.send_to(text_data=json.dumps({"type": "text", "text": "How much leave?"}))
    await collect_until(comm, lambda f: isinstance(f, dict) and f["type"] == "transcript.delta")
    await fake.drop()  # the model's process dies in the middle of the answer
    fake.chunk_delay_s = 0.0
    frames = await collect_until(
        comm,
        lambda f: (
            isinstance(f, dict)
            and f["type"] == "transcript.done"
            and f["role"] == "assistant"
            and not f.get("interrupted")
        ),
    )
    events = [f for f in frames if isinstance(f, dict)]
    # The page is told: the cut answer is closed, then reconnecting, then reconnected.
    cut = next(e for e in events if e.get("interrupted"))
    assert {"type": "status", "status": "reconnecting"} in events
    assert {"type": "notice", "notice": "reconnected"} in events
    assert events.index(cut) < events.index({"type": "status", "status": "reconnecting"})
    await comm.disconnect()

    @database_sync_to_async
    def stored_and_page() -> tuple[list[tuple[str, dict[str, Any]]], str]:
        conversation = Conversation.objects.get()
        records = [
            (r.event_type, r.data)
            for r in ConversationEvent.objects.filter(conversation=conversation)
        ]
        client = Client()
        client.force_login(conversation.user)
        page = client.get(f"/conversations/{conversation.public_id}/").content.decode()
        return records, page

    records, page = await stored_and_page()
    turns = [(d["role"], d["text"], d.get("cut_off")) for k, d in records if k == "transcript"]
    assert turns == [
        ("user", "How much leave?", None),
        ("assistant", cut["text"], "upstream_dropped"),
        ("assistant", "Twenty days of paid leave a year, and five more after ten years.", None),
    ]
    assert [d["reason"] for k, d in records if k == "rollover"] == ["upstream_dropped"]
    assert ready["type"] == "ready" and cut["text"] in page
    assert "Cut off when the model's session ended (upstream_dropped)" in page


async def test_with_recording_on_each_turns_audio_is_stored_with_its_hash(fake, settings, tmp_path):
    import hashlib
    import wave

    settings.KOE_RECORD_AUDIO = True
    settings.MEDIA_ROOT = tmp_path / "media"
    comm = await connect(await session_cookie("emi", Role.EMPLOYEE))
    await receive(comm)  # ready
    await comm.send_to(text_data=json.dumps({"type": "mode", "mode": "push_to_talk"}))
    spoken = b"\x00\x01" * 960
    for _ in range(25):
        await comm.send_to(bytes_data=spoken)
    await comm.send_to(text_data=json.dumps({"type": "commit"}))
    await collect_until(comm, lambda f: isinstance(f, dict) and f["type"] == "usage")
    await comm.disconnect()

    @database_sync_to_async
    def recordings() -> list[dict[str, Any]]:
        return list(
            ConversationEvent.objects.filter(event_type="audio")
            .order_by("sequence")
            .values_list("data", flat=True)
        )

    stored = {r["role"]: r for r in await recordings()}
    assert set(stored) == {"user", "assistant"}
    user = stored["user"]
    assert user["duration_ms"] == 1000
    path = settings.MEDIA_ROOT / user["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == user["sha256"]
    with wave.open(str(path)) as wav:
        assert wav.readframes(wav.getnframes()) == spoken * 25  # what the browser sent
    assert (settings.MEDIA_ROOT / stored["assistant"]["file"]).exists()


async def test_a_voice_socket_holds_no_channel_layer_subscription(fake):
    """With Redis as the channel layer every subscribed socket holds a blocking read on it,
    and a slow Redis ended the sockets (bench/gateway.py --processes 2): the voice socket
    receives nothing through the layer, so it does not subscribe."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    assert layer is not None  # one is configured (in memory here, Redis when deployed)
    before = set(getattr(layer, "channels", {}))
    comm = await connect(await session_cookie("emi", Role.EMPLOYEE))
    assert json.loads((await receive(comm))["text"])["type"] == "ready"
    assert set(getattr(layer, "channels", {})) == before
    await comm.disconnect()


async def test_a_full_process_sends_new_people_elsewhere(fake, settings):
    from voice import limits

    settings.KOE_MAX_SESSIONS_PER_PROCESS = limits._process_sessions["open"] + 1
    first = await connect(await session_cookie("emi", Role.EMPLOYEE))
    assert json.loads((await receive(first))["text"])["type"] == "ready"
    # The process is full: the next person is told to try again (the page reconnects, through
    # the load balancer, to another process); their own limits are not touched.
    error = await expect_refusal(await connect(await session_cookie("ken", Role.EMPLOYEE)), 4503)
    assert error["code"] == "server_busy"
    await first.disconnect()
    again = await connect(await session_cookie("aki", Role.EMPLOYEE))
    assert json.loads((await receive(again))["text"])["type"] == "ready"
    await again.disconnect()
    assert limits._process_sessions["open"] == settings.KOE_MAX_SESSIONS_PER_PROCESS - 1


async def test_the_users_own_language_is_the_transcription_language(fake, settings):
    from accounts.services import preference_set

    settings.KOE_TRANSCRIPTION_LANGUAGE = "en"
    # A cloud provider (the offline engine would refuse Japanese): the fake speaks as OpenAI.
    settings.KOE_REALTIME_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = fake.url.split("/v1/")[0].replace("ws://", "http://")
    settings.OPENAI_API_KEY = "sk-test"
    cookie = await session_cookie("yui", Role.EMPLOYEE)
    user = await database_sync_to_async(get_user_model().objects.get)(username="yui")
    await database_sync_to_async(preference_set)(user=user, transcription_language="ja")
    comm = await connect(cookie)
    await receive(comm)  # ready
    update = fake.current.of_type("session.update")[0]["session"]
    assert update["audio"]["input"]["transcription"]["language"] == "ja"
    # The instructions ask for answers in the language the user speaks.
    assert "in the language the user speaks" in update["instructions"]
    await comm.disconnect()
