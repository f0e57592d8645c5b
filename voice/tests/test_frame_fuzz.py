"""Random browser frames against the voice socket (real ASGI stack, fake model upstream):
valid and invalid JSON, wrong types, huge and empty frames, binary junk, deep nesting, Unicode.

Nothing may crash the socket; every error is well-formed; nothing of the server's policy
(instructions, tool names and schemas, tool arguments) ever reaches the browser. The example
count is bounded for CI; KOE_FUZZ_EXAMPLES raises it for a longer run.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.roles import Role
from voice.realtime.policy import DEFAULT_INSTRUCTIONS, SEARCH_KNOWLEDGE
from voice.tests.test_consumers import connect, fake, receive, session_cookie  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("KOE_FUZZ_EXAMPLES", "40"))
ERROR_CODES = {
    "invalid_json",
    "unknown_type",
    "invalid_message",
    "invalid_audio",
    "frame_too_large",
    "rate_limited",
    "not_ready",
    "upstream_error",
    "upstream_unavailable",
    "repeat_please",
}
BROWSER_EVENTS = {
    "ready",
    "status",
    "speech.started",
    "item.created",
    "transcript.delta",
    "transcript.done",
    "transcript.failed",
    "audio.start",
    "audio.done",
    "citations",
    "usage",
    "notice",
    "error",
}
SECRETS = (
    DEFAULT_INSTRUCTIONS[:40],
    "search_knowledge",
    SEARCH_KNOWLEDGE.description[:40],
    "paid leave days",  # the fake model's tool arguments
)
TRIED = {"frames": 0, "examples": 0}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
commands = st.one_of(
    st.sampled_from(["commit", "clear", "cancel"]).map(lambda t: {"type": t}),
    st.builds(
        lambda m: {"type": "mode", "mode": m}, st.sampled_from(["hands_free", "push_to_talk", "x"])
    ),
    st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=300)),
    st.builds(
        lambda i, ms: {"type": "truncate", "item_id": i, "played_ms": ms},
        st.text(max_size=12),
        st.integers(-10, 10**12),
    ),
    st.builds(lambda t, v: {"type": t, "extra": v}, st.text(max_size=30), json_values),
)
text_frames = st.one_of(
    commands.map(lambda c: json.dumps(c, ensure_ascii=False)),
    json_values.map(json.dumps),
    st.text(max_size=200),  # mostly not JSON at all
    st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),  # deep nesting
    st.just("x" * 70_000),  # over the text frame limit
    st.just(""),
)
binary_frames = st.one_of(
    st.binary(max_size=2000),  # junk, odd lengths, empty
    st.integers(1, 25).map(lambda n: b"\x00\x01" * (480 * n)),  # real-looking audio
    st.just(b"\x00" * 1_100_000),  # over a second of audio
)
frames = st.lists(
    st.one_of(text_frames.map(lambda t: ("text", t)), binary_frames.map(lambda b: ("bytes", b))),
    min_size=1,
    max_size=6,
)


def generated_batches() -> list[list[tuple[str, Any]]]:
    """The batches of frames, drawn by hypothesis (reproducibly: derandomized). They are sent
    afterwards on this test's own event loop, one socket per batch."""
    batches: list[list[tuple[str, Any]]] = []

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=frames)
    def collect(batch: list[tuple[str, Any]]) -> None:
        batches.append(batch)

    collect()
    return batches


async def drain(comm: Any, quiet_s: float = 0.15) -> list[dict[str, Any] | bytes]:
    """Everything the socket sends until it has been quiet for a moment (receive_nothing: a
    timed-out receive_output would cancel the consumer)."""
    out: list[dict[str, Any] | bytes] = []
    while not await comm.receive_nothing(timeout=quiet_s):
        message = await comm.receive_output(5)
        assert message["type"] == "websocket.send", f"the socket closed: {message}"
        out.append(json.loads(message["text"]) if message.get("text") else message["bytes"])
    return out


def check(sent: list[dict[str, Any] | bytes]) -> None:
    for frame in sent:
        if isinstance(frame, bytes):
            continue
        assert frame.get("type") in BROWSER_EVENTS, frame
        if frame["type"] == "error":
            assert frame["code"] in ERROR_CODES and isinstance(frame["message"], str), frame
        raw = json.dumps(frame, ensure_ascii=False)
        assert not any(secret in raw for secret in SECRETS), frame


async def test_random_frames_never_break_the_socket_or_leak_the_policy(fake, settings):  # noqa: F811
    settings.KOE_UPSTREAM_CONNECTS_PER_MINUTE = 10_000
    fake.tool_plan = [("search_knowledge", '{"query": "paid leave days"}')]
    cookie = await session_cookie("emi", Role.EMPLOYEE)
    for batch in await asyncio.to_thread(generated_batches):
        comm = await connect(cookie)
        check([json.loads((await receive(comm, 10))["text"])])  # ready
        for kind, payload in batch:
            TRIED["frames"] += 1
            # Straight to the ASGI app: the test helper refuses empty frames, browsers don't.
            await comm.send_input({"type": "websocket.receive", kind: payload})
            check(await drain(comm))
        # The consumer writes the conversation's last records before it lets go.
        await comm.disconnect(timeout=30)
        TRIED["examples"] += 1
    print(f"frame fuzzing: {TRIED['frames']} frames in {TRIED['examples']} sockets")
    assert TRIED["examples"] >= min(EXAMPLES, 10)
