"""The engine inside Koe's ASGI app, and the gateway talking to it: Koe with no cloud at all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from accounts.roles import Role
from portal.asgi import application
from voice.knowledge import Passage
from voice.tests.test_consumers import collect_until, session_cookie
from voice.tests.test_consumers import connect as browser_connect

pytestmark = pytest.mark.django_db(transaction=True)

LEAVE_TEXT = "Full-time employees receive twenty days of annual paid leave each year."


def leave_search(*, user: Any, query: str, k: int) -> list[Passage]:
    return [Passage(document_id="d1", title="Leave and Holidays", text=LEAVE_TEXT)]


def key_header() -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {django_settings.KOE_LOCAL_REALTIME_KEY}".encode())


async def test_the_engine_is_served_by_koes_own_app_with_the_derived_key():
    assert django_settings.KOE_LOCAL_REALTIME_KEY.startswith("koe-engine-")
    comm = WebsocketCommunicator(application, "/openai/v1/realtime?model=x", headers=[key_header()])
    connected, _ = await comm.connect(timeout=20)
    assert connected
    created = json.loads((await comm.receive_output(20))["text"])
    assert created["type"] == "session.created" and created["session"]["type"] == "realtime"
    await comm.disconnect()

    transcription = WebsocketCommunicator(
        application, "/v1/realtime?intent=transcription", headers=[key_header()]
    )
    assert (await transcription.connect(timeout=20))[0]
    created = json.loads((await transcription.receive_output(20))["text"])
    assert created["session"]["type"] == "transcription"
    await transcription.disconnect()


@pytest.mark.parametrize(
    "headers",
    [
        [],  # no key
        [(b"authorization", b"Bearer wrong")],
        [(b"api-key", b"wrong")],
        # The right key from a browser page: the engine is server to server only.
        [(b"origin", b"http://127.0.0.1:8000"), "key"],
    ],
)
async def test_sockets_without_the_key_or_from_a_browser_are_refused(headers):
    headers = [key_header() if h == "key" else h for h in headers]
    comm = WebsocketCommunicator(application, "/v1/realtime", headers=headers)
    connected, _ = await comm.connect(timeout=10)
    assert not connected


async def test_the_gateway_answers_a_typed_question_through_koes_own_engine(
    settings, engine_models
):
    from voice.engine.server import engine_serve

    server = await engine_serve(
        host="127.0.0.1", port=0, key=settings.KOE_LOCAL_REALTIME_KEY, models=engine_models
    )
    port = next(iter(server.sockets)).getsockname()[1]
    settings.KOE_REALTIME_PROVIDER = "local"
    settings.KOE_LOCAL_REALTIME_URL = f"ws://127.0.0.1:{port}/v1/realtime"
    settings.KOE_KNOWLEDGE_SEARCH = "voice.tests.engine.test_consumer.leave_search"
    settings.KOE_UPSTREAM_CONNECTS_PER_MINUTE = 100
    try:
        comm = await browser_connect(await session_cookie("emi", Role.EMPLOYEE))
        frames = await collect_until(
            comm, lambda f: isinstance(f, dict) and f["type"] == "ready", 30
        )
        await comm.send_to(
            text_data=json.dumps({"type": "text", "text": "How many days of paid leave do I get?"})
        )
        frames = await collect_until(
            comm,
            lambda f: (
                isinstance(f, dict) and f["type"] == "transcript.done" and f["role"] == "assistant"
            ),
            60,
        )
        answer = frames[-1]["text"]
        assert answer.startswith("According to Leave and Holidays:") and "twenty days" in answer
        assert any(isinstance(f, bytes) and f for f in frames)  # spoken, too
        citations = [f for f in frames if isinstance(f, dict) and f["type"] == "citations"]
        assert citations and citations[0]["citations"][0]["title"] == "Leave and Holidays"
        await comm.disconnect()
    finally:
        server.close()
        await server.wait_closed()


async def test_the_engine_can_be_switched_off(settings):
    settings.KOE_ENGINE_ENABLED = False
    comm = WebsocketCommunicator(application, "/v1/realtime", headers=[key_header()])
    connected, _ = await comm.connect(timeout=10)
    assert not connected
