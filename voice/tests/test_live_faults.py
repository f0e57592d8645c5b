"""Faults a live Koe must ride out: the database going away mid-conversation, and the server
being stopped (SIGTERM) with people talking.

A real daphne process serves the test database; its model is the scripted Realtime server in
this process; the "browsers" are WebSocket clients with a signed-in session cookie.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect

from accounts.roles import Role
from accounts.services import user_roles_set
from voice.models import Conversation, ConversationEvent
from voice.selectors import conversation_chain_problems
from voice.tests.db_cable import DatabaseCable
from voice.tests.fake_upstream import FakeUpstream
from voice.tests.live_server import LiveKoe

pytestmark = pytest.mark.django_db(transaction=True)

OUTAGE_S = 5.0


@pytest.fixture
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


async def live_koe(fake: FakeUpstream, media_root: Any, **env: str) -> LiveKoe:
    return await asyncio.to_thread(
        LiveKoe,
        media_root=media_root,
        upstream_url=fake.url.split("?")[0],
        extra_env={"KOE_ENGINE_ENABLED": "false", **env},
    )


@database_sync_to_async
def signed_in_cookie(username: str) -> str:
    user = get_user_model().objects.create_user(username)
    user_roles_set(user=user, roles=[Role.EMPLOYEE])
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def open_voice(koe: LiveKoe, cookie: str) -> tuple[ClientConnection, str]:
    """A browser's voice socket, once Koe says it is ready; returns it and the conversation."""
    ws = await connect(
        f"ws://127.0.0.1:{koe.port}/ws/voice/",
        origin=koe.url,  # type: ignore[arg-type]
        additional_headers={"Cookie": cookie},
    )
    ready = await next_event(ws, "ready")
    return ws, ready["conversation_id"]


async def next_event(ws: ClientConnection, kind: str, within: float = 15) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        while True:
            frame = await ws.recv()
            if isinstance(frame, str) and (event := json.loads(frame))["type"] == kind:
                return event

    return await asyncio.wait_for(find(), within)


async def ask(ws: ClientConnection, question: str) -> dict[str, Any]:
    """A typed question; returns the finished answer."""
    await ws.send(json.dumps({"type": "text", "text": question}))

    async def answer() -> dict[str, Any]:
        while True:
            event = await next_event(ws, "transcript.done")
            if event["role"] == "assistant":
                return event

    return await asyncio.wait_for(answer(), 20)


@database_sync_to_async
def stored(public_id: str) -> tuple[Conversation, list[tuple[str, dict[str, Any]]]]:
    conversation = Conversation.objects.get(public_id=public_id)
    records = ConversationEvent.objects.filter(conversation=conversation).order_by("sequence")
    return conversation, [(r.event_type, r.data) for r in records]


async def ended(public_id: str, within: float = 40) -> Conversation:
    async def poll() -> Conversation:
        while True:
            conversation, _ = await stored(public_id)
            if conversation.ended_at is not None:
                return conversation
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), within)


@database_sync_to_async
def chain_problems() -> list[Any]:
    return list(conversation_chain_problems())


async def test_a_five_second_database_outage_loses_no_turn(fake, media_root):
    cable = DatabaseCable(connection.get_connection_params()).start()
    db = connection.settings_dict
    koe = await live_koe(
        fake,
        media_root,
        DATABASE_URL=f"postgres://{db.get('USER') or 'postgres'}"
        f"{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}"
        f"@127.0.0.1:{cable.port}/{db['NAME']}",
    )
    try:
        ws, public_id = await open_voice(koe, await signed_in_cookie("emi"))
        fake.answer = lambda conn: f"Answer number {len(conn.of_type('response.create'))}."
        assert (await ask(ws, "Before the outage?"))["text"] == "Answer number 1."

        await asyncio.to_thread(cable.unplug)
        loop = asyncio.get_running_loop()
        back_at = loop.time() + OUTAGE_S
        # The talk goes on while the database is away: answers keep coming.
        assert (await ask(ws, "During the outage?"))["text"] == "Answer number 2."
        assert (await ask(ws, "Still down?"))["text"] == "Answer number 3."
        await asyncio.sleep(max(0.0, back_at - loop.time()))
        await asyncio.to_thread(cable.plug)

        assert (await ask(ws, "After the outage?"))["text"] == "Answer number 4."
        await ws.close()
        conversation = await ended(public_id)
    finally:
        await asyncio.to_thread(koe.stop)
        cable.close()

    # Koe did lose its database: it was refused while the cable was out (its pool retried the
    # connection, or the recorder its write) and carried on.
    log = koe.log.read_text()
    assert "Connection refused" in log or "audit write failed, retrying" in log
    _, records = await stored(public_id)
    turns = [(d["role"], d["text"]) for kind, d in records if kind == "transcript"]
    questions = ["Before the outage?", "During the outage?", "Still down?", "After the outage?"]
    assert turns == [
        turn
        for number, question in enumerate(questions, start=1)
        for turn in (("user", question), ("assistant", f"Answer number {number}."))
    ]
    assert records[-1] == ("ended", {"reason": "client_closed"})
    assert conversation.end_reason == "client_closed"
    assert conversation.record_count == len(records)
    assert await chain_problems() == []


async def test_sigterm_tells_every_browser_and_flushes_the_records(fake, media_root):
    koe = await live_koe(fake, media_root)
    try:
        browsers = [await open_voice(koe, await signed_in_cookie(name)) for name in ("aki", "ben")]
        for ws, _ in browsers:
            await ask(ws, "Is anyone there?")
        # One of them is in the middle of an answer when the server is stopped.
        fake.answer = lambda conn: "A long answer that is still being spoken when Koe stops."
        fake.answer_audio_ms = 3000
        fake.chunk_delay_s = 0.2
        talking, _ = browsers[1]
        await talking.send(json.dumps({"type": "text", "text": "Tell me more"}))
        await next_event(talking, "audio.start")

        koe.process.send_signal(signal.SIGTERM)
        for ws, _ in browsers:
            error = await next_event(ws, "error")
            assert error["code"] == "server_restarting"
            with pytest.raises(Exception):  # noqa: B017 (the socket's close, checked below)
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 4503
        exit_code = await asyncio.to_thread(koe.process.wait, 30)
        assert exit_code == 0
    finally:
        await asyncio.to_thread(koe.stop)

    for index, (_, public_id) in enumerate(browsers):
        conversation, records = await stored(public_id)
        assert conversation.end_reason == "server_shutdown"
        assert conversation.record_count == len(records)
        transcripts = [d for kind, d in records if kind == "transcript"]
        assert [t["text"] for t in transcripts[:2]] == ["Is anyone there?", "You get twenty days."]
        if index == 1:
            # The answer being spoken is kept as far as it had got.
            assert transcripts[-1]["cut_off"] == "server_shutdown"
        assert records[-1] == ("ended", {"reason": "server_shutdown"})
    assert await chain_problems() == []
