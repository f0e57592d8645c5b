"""Two Koe processes behind nginx, sharing Redis (channel layer and cache) and one database: the
deployment of the README. Conversations work through nginx, and the per-user limit holds across
the processes (it lives in Redis, not in a process)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect

from voice.tests.live_server import LiveKoe, Nginx
from voice.tests.test_live_faults import ask, signed_in_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def deployment(fake, redis_url, tmp_path, settings) -> AsyncIterator[list]:
    """Two Koe processes and nginx; yields [nginx's URL, Koe 1, Koe 2]."""
    settings.MEDIA_ROOT = tmp_path / "media"
    env = {
        "REDIS_URL": redis_url,
        "KOE_ENGINE_ENABLED": "false",
        "KOE_MAX_SESSIONS_PER_USER": "2",
    }
    koes = await asyncio.gather(
        *(
            asyncio.to_thread(
                LiveKoe,
                media_root=tmp_path / "media",
                upstream_url=fake.url.split("?")[0],
                extra_env=env,
            )
            for _ in range(2)
        )
    )
    nginx = await asyncio.to_thread(
        Nginx, upstreams=[f"127.0.0.1:{k.port}" for k in koes], prefix=tmp_path / "nginx"
    )
    try:
        yield [nginx.url, *koes]
    finally:
        nginx.stop()
        await asyncio.gather(*(asyncio.to_thread(k.stop) for k in koes))


async def open_socket(base: str, cookie: str) -> tuple[ClientConnection, dict]:
    ws = await connect(
        base.replace("http://", "ws://") + "/ws/voice/",
        origin=base,  # type: ignore[arg-type]
        additional_headers={"Cookie": cookie},
    )
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if event["type"] in ("ready", "error"):
            return ws, event


async def test_conversations_through_nginx_and_the_user_limit_across_processes(deployment):
    via_nginx, koe_1, koe_2 = deployment
    emi = await signed_in_cookie("emi")
    # One conversation on each process, opened directly...
    first, ready_1 = await open_socket(koe_1.url, emi)
    second, ready_2 = await open_socket(koe_2.url, emi)
    assert ready_1["type"] == ready_2["type"] == "ready"
    # ...and the third, wherever nginx sends it, is refused: the count is shared in Redis.
    third, refusal = await open_socket(via_nginx, emi)
    assert refusal["code"] == "limit_reached" and refusal["retry_after"] > 0
    await third.wait_closed()
    assert third.close_code == 4429

    # A slot given back on one process is free on the other.
    await first.close()
    await asyncio.sleep(1.0)
    again, ready_3 = await open_socket(via_nginx, emi)
    assert ready_3["type"] == "ready"
    for ws in (second, again):
        await ws.close()

    # Other people talk through nginx, spread over both processes.
    talks = []
    for name in ("aki", "ben", "chie", "dai"):
        ws, ready = await open_socket(via_nginx, await signed_in_cookie(name))
        assert ready["type"] == "ready"
        talks.append(ws)
    answers = await asyncio.gather(*(ask(ws, "How many days of leave?") for ws in talks))
    assert {a["text"] for a in answers} == {"You get twenty days."}
    for ws in talks:
        await ws.close()
    # nginx spread the six sockets it carried over both processes (round robin).
    for koe in (koe_1, koe_2):
        assert koe.log.read_text().count("WSCONNECT /ws/voice/") >= 3
