"""RealtimeSession against a scripted GA server on 127.0.0.1 (real WebSockets)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from voice.realtime.browser_protocol import Cancel, Commit, Mode, Text, Truncate
from voice.realtime.policy import DEFAULT_INSTRUCTIONS, SessionPolicy, TurnMode
from voice.realtime.providers import (
    ProviderConfig,
    ProviderKind,
    auth_headers_factory,
    upstream_connector,
)
from voice.realtime.session import RealtimeSession, Record, SessionSettings, Turn, replay_items
from voice.realtime.tools import Citation, ToolBox, ToolOutcome
from voice.tests.fake_upstream import Connection, FakeUpstream

SECOND_OF_AUDIO = b"\x01\x00" * 24000


@dataclass
class Harness:
    session: RealtimeSession
    task: asyncio.Task[None]
    emitted: list[Any] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            m for m in self.emitted if isinstance(m, dict) and (kind is None or m["type"] == kind)
        ]

    def answers(self) -> list[dict[str, Any]]:
        """The assistant's finished transcripts (typed questions have theirs too)."""
        return [m for m in self.messages("transcript.done") if m["role"] == "assistant"]

    def audio_bytes(self) -> int:
        return sum(len(m) for m in self.emitted if isinstance(m, bytes))

    def raw_json(self) -> str:
        return "\n".join(json.dumps(m, ensure_ascii=False) for m in self.messages())

    def records_of(self, kind: str) -> list[dict[str, Any]]:
        return [r.data for r in self.records if r.kind == kind]

    async def wait(self, predicate, within: float = 5.0) -> None:
        async def poll() -> None:
            while not predicate():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), within)

    async def stop(self) -> None:
        await self.session.close()
        await asyncio.wait_for(self.task, 5)


async def start(
    fake: FakeUpstream,
    *,
    tools: ToolBox | None = None,
    settings: SessionSettings | None = None,
    mode: TurnMode = TurnMode.PUSH_TO_TALK,
    store_audio: Any = None,
) -> Harness:
    config = ProviderConfig(
        kind=ProviderKind.LOCAL,
        endpoint=fake.url.split("?")[0],
        model="fake-realtime",
        api_key="local-key",
    )
    emitted: list[Any] = []
    records: list[Record] = []

    async def emit(out: Any) -> None:
        emitted.append(out)

    session = RealtimeSession(
        connect=upstream_connector(config, auth_headers_factory(config)),  # type: ignore[arg-type]
        policy=SessionPolicy(),
        tools=tools or ToolBox(),
        emit=emit,
        record=records.append,
        mode=mode,
        settings=settings or SessionSettings(connect_backoff_s=0.01),
        store_audio=store_audio,
    )
    harness = Harness(
        session=session, task=asyncio.create_task(session.run()), emitted=emitted, records=records
    )
    await fake.wait_for("session.update")
    await harness.wait(lambda: session._ready.is_set())
    return harness


async def run_to_end(
    fake: FakeUpstream, settings: SessionSettings
) -> tuple[RealtimeSession, list[Any], list[Record]]:
    """Run a session that is expected to end by itself (the upstream fails); return it."""
    records: list[Record] = []
    emitted: list[Any] = []

    async def emit(out: Any) -> None:
        emitted.append(out)

    config = ProviderConfig(kind=ProviderKind.LOCAL, endpoint=fake.url.split("?")[0], model="m")
    session = RealtimeSession(
        connect=upstream_connector(config, auth_headers_factory(config)),  # type: ignore[arg-type]
        policy=SessionPolicy(),
        tools=ToolBox(),
        emit=emit,
        record=records.append,
        settings=settings,
    )
    await asyncio.wait_for(session.run(), 20)
    return session, emitted, records


async def spoken_turn(h: Harness, fake: FakeUpstream) -> Connection:
    await h.session.audio(SECOND_OF_AUDIO)
    await h.session.command(Commit(type="commit"))
    conn = await fake.wait_for("response.create")
    await h.wait(lambda: any(r.kind == "usage" for r in h.records))
    return conn


async def test_the_server_policy_goes_upstream_and_never_to_the_browser(fake):
    h = await start(fake)
    conn = fake.current
    assert conn.headers["authorization"] == "Bearer local-key"
    assert conn.path == "/v1/realtime?model=fake-realtime"
    first = conn.received[0]
    assert first["type"] == "session.update"
    assert first["session"]["instructions"] == DEFAULT_INSTRUCTIONS
    assert first["session"]["audio"]["input"]["turn_detection"] is None  # push-to-talk
    await spoken_turn(h, fake)
    raw = h.raw_json()
    assert "search_knowledge" not in raw
    assert DEFAULT_INSTRUCTIONS[:40] not in raw
    assert "session.updated" not in raw and "rate_limits" not in raw
    await h.stop()


async def test_push_to_talk_turn_is_transcribed_answered_and_recorded(fake):
    h = await start(fake)
    conn = await spoken_turn(h, fake)
    appended = sum(len(e["audio"]) for e in conn.of_type("input_audio_buffer.append"))
    assert appended == len(SECOND_OF_AUDIO) * 4 // 3  # base64 of exactly what was sent
    done = {m["role"]: m["text"] for m in h.messages("transcript.done")}
    assert done == {"user": fake.user_transcript, "assistant": "You get twenty days."}
    assert h.audio_bytes() == 600 * 48
    transcripts = h.records_of("transcript")
    assert [t["role"] for t in transcripts] == ["user", "assistant"]
    (usage,) = h.records_of("usage")
    assert usage["input_tokens"] == 200 and usage["output_audio_tokens"] == 60
    await h.stop()
    assert h.records_of("ended") == [{"reason": "client_closed"}]


async def test_mode_switch_changes_only_turn_detection(fake):
    h = await start(fake)
    await h.session.command(Mode(type="mode", mode=TurnMode.HANDS_FREE))
    conn = await fake.wait_for("session.update", count=2)
    update = conn.of_type("session.update")[1]["session"]
    assert set(update) == {"type", "audio"}
    assert update["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    await h.stop()


async def test_two_function_calls_in_one_response_run_on_the_server(fake):
    seen: list[dict[str, Any]] = []
    started = asyncio.Event()

    async def search(arguments: dict[str, Any]) -> ToolOutcome:
        seen.append(arguments)
        if len(seen) == 2:
            started.set()
        await asyncio.wait_for(started.wait(), 2)  # both run at once, or this times out
        query = arguments["query"]
        return ToolOutcome(
            output=json.dumps({"passages": [f"TOOL-RESULT for {query}"]}),
            citations=(
                Citation(
                    document_id=f"doc-{query}",
                    title=f"Handbook {query}",
                    passage=f"passage about {query}",
                    location="p. 3",
                ),
            ),
        )

    fake.tool_plan = [
        ("search_knowledge", '{"query": "leave"}'),
        ("search_knowledge", '{"query": "holidays"}'),
    ]
    fake.answer = lambda conn: (
        "From the handbook: " + " | ".join(item["output"] for item in conn.function_outputs)
    )
    h = await start(fake, tools=ToolBox(functions={"search_knowledge": search}))
    await h.session.command(Text(type="text", text="How many days of leave?"))
    conn = await fake.wait_for("response.create", count=2)
    await h.wait(lambda: len(h.answers()) == 1)

    assert sorted(a["query"] for a in seen) == ["holidays", "leave"]
    kinds = [e["type"] for e in conn.received]
    # Both outputs go up before the one follow-up response.create.
    outputs_at = [
        i
        for i, e in enumerate(conn.received)
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    ]
    assert len(outputs_at) == 2
    assert max(outputs_at) < len(kinds) - 1 - kinds[::-1].index("response.create")
    answer = h.answers()[0]["text"]
    assert "TOOL-RESULT for leave" in answer and "TOOL-RESULT for holidays" in answer

    statuses = [m["status"] for m in h.messages("status")]
    assert "searching" in statuses
    (citations,) = h.messages("citations")
    assert citations["item_id"] == h.answers()[0]["item_id"]
    assert {c["title"] for c in citations["citations"]} == {"Handbook leave", "Handbook holidays"}
    raw = h.raw_json()
    # Tool output reaches the browser only as what the assistant said aloud.
    not_speech = [m for m in h.messages() if not m["type"].startswith("transcript.")]
    assert "TOOL-RESULT" not in json.dumps(not_speech)
    assert "search_knowledge" not in raw and '"query"' not in raw
    calls = h.records_of("tool_call")
    assert {c["document_ids"][0] for c in calls} == {"doc-leave", "doc-holidays"}
    await h.stop()


async def test_a_slow_or_failing_tool_gives_the_model_an_error_text_and_the_talk_goes_on(fake):
    async def slow(arguments: dict[str, Any]) -> ToolOutcome:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    async def broken(arguments: dict[str, Any]) -> ToolOutcome:
        raise RuntimeError("database is down")

    fake.tool_plan = [
        ("search_knowledge", '{"query": "x"}'),
        ("broken", "{}"),
        ("not_a_tool", "{}"),
    ]
    tools = ToolBox(functions={"search_knowledge": slow, "broken": broken}, timeout_s=0.2)
    h = await start(fake, tools=tools)
    await h.session.command(Text(type="text", text="question"))
    conn = await fake.wait_for("response.create", count=2)
    outputs = [json.loads(item["output"])["error"] for item in conn.function_outputs]
    assert "did not answer within 0.2 seconds" in outputs[0]
    assert "the tool failed" in outputs[1] and "database" not in outputs[1]
    assert "unknown tool 'not_a_tool'" in outputs[2]
    await h.wait(lambda: len(h.answers()) == 1)
    first_call = h.records_of("tool_call")[0]
    assert first_call["error"].startswith("the tool did not answer")
    await h.stop()


async def test_barge_in_truncates_to_the_audio_actually_received(fake):
    fake.answer_audio_ms = 2000
    fake.chunk_delay_s = 0.05
    h = await start(fake)
    await h.session.command(Text(type="text", text="tell me a long story"))
    await h.wait(lambda: h.audio_bytes() >= 300 * 48)
    item_id = h.messages("audio.start")[0]["item_id"]
    received_ms = h.audio_bytes() // 48
    # The browser claims to have played more than it could have received: clamped.
    await h.session.command(Truncate(type="truncate", item_id=item_id, played_ms=60_000))
    conn = await fake.wait_for("conversation.item.truncate")
    truncate = conn.of_type("conversation.item.truncate")[0]
    assert truncate["content_index"] == 0
    assert truncate["item_id"].startswith("item_")  # the upstream id, not Koe's
    assert 300 <= truncate["audio_end_ms"] <= received_ms + 100
    await h.session.command(Cancel(type="cancel"))
    await fake.wait_for("response.cancel")
    # Unknown ids and items without audio are not sent upstream.
    await h.session.command(Truncate(type="truncate", item_id="k_unknown", played_ms=10))
    user_item = h.messages("item.created")[0]["item_id"]
    await h.session.command(Truncate(type="truncate", item_id=user_item, played_ms=10))
    await asyncio.sleep(0.1)
    assert len(conn.of_type("conversation.item.truncate")) == 1
    (cut,) = h.records_of("truncated")
    assert cut["audio_end_ms"] == truncate["audio_end_ms"]
    # The answer's transcript is kept for audit with the part the user actually heard.
    await h.wait(lambda: len(h.records_of("transcript")) == 2)
    answer = h.records_of("transcript")[1]
    assert answer["role"] == "assistant"
    heard = answer.get("heard_text", cut.get("heard_text"))
    assert heard is not None and len(heard) < len(answer["text"])
    await h.stop()


async def test_text_during_an_answer_waits_for_response_done(fake):
    fake.chunk_delay_s = 0.05
    h = await start(fake)
    await h.session.command(Text(type="text", text="first"))
    await h.wait(lambda: h.audio_bytes() > 0)
    await h.session.command(Text(type="text", text="second"))
    conn = await fake.wait_for("response.create", count=2, within=10)
    await h.wait(lambda: len(h.answers()) == 2, within=10)
    assert not [m for m in h.messages("error")]
    assert len(conn.of_type("response.create")) == 2
    await h.stop()


def assert_replayed(conn: Connection, *texts: str) -> None:
    replayed = [
        part["text"]
        for e in conn.of_type("conversation.item.create")
        for part in e["item"].get("content", [])
    ]
    joined = "\n".join(replayed)
    for text in texts:
        assert text in joined, (text, replayed)


async def test_rollover_before_the_session_limit_replays_the_conversation(fake):
    settings = SessionSettings(
        max_session_seconds=1.0, rollover_margin_s=0.5, connect_backoff_s=0.01
    )
    h = await start(fake, settings=settings)
    await spoken_turn(h, fake)
    await fake.wait_connections(2)
    second = await fake.wait_for("conversation.item.create", count=2)
    assert second.received[0]["type"] == "session.update"
    assert second.received[0]["session"]["instructions"] == DEFAULT_INSTRUCTIONS
    assert_replayed(second, fake.user_transcript, "You get twenty days.")
    await h.wait(lambda: bool(h.messages("notice")))
    assert h.messages("notice")[0] == {"type": "notice", "notice": "reconnected"}
    assert h.records_of("rollover")[0]["reason"] == "max_session_age"
    await h.stop()


async def test_session_expired_and_dropped_connections_roll_over(fake):
    h = await start(fake)
    await spoken_turn(h, fake)
    await fake.expire()
    await fake.wait_connections(2)
    assert_replayed(await fake.wait_for("conversation.item.create", count=2), fake.user_transcript)
    await h.wait(lambda: len(h.records_of("rollover")) == 1)
    assert h.records_of("rollover")[0]["reason"] == "session_expired"

    await fake.drop()
    await fake.wait_connections(3)
    await fake.wait_for("conversation.item.create", count=2)
    await h.wait(lambda: len(h.records_of("rollover")) == 2)
    assert h.records_of("rollover")[1]["reason"] == "upstream_dropped"
    # The conversation goes on in the third session.
    await h.session.command(Text(type="text", text="still there?"))
    await fake.wait_for("response.create")
    await h.stop()


async def test_dead_upstream_ends_with_a_clear_error(fake):
    fake.refuse_connections = True
    session, emitted, records = await run_to_end(
        fake, SessionSettings(connect_attempts=2, connect_backoff_s=0.01)
    )
    assert emitted == [
        {
            "type": "error",
            "code": "upstream_unavailable",
            "message": "The assistant is unavailable right now.",
        }
    ]
    assert session.end_reason == "upstream_unavailable"
    assert records[-1].data == {"reason": "upstream_unavailable"}


async def test_a_command_waiting_for_a_dead_upstream_is_released_when_the_session_ends(fake):
    """The browser's consumer handles one message at a time: a command left waiting for the
    full wait would hold up its disconnect (and the conversation's end) for that long."""
    fake.refuse_connections = True
    config = ProviderConfig(kind=ProviderKind.LOCAL, endpoint=fake.url.split("?")[0], model="m")
    session = RealtimeSession(
        connect=upstream_connector(config, auth_headers_factory(config)),  # type: ignore[arg-type]
        policy=SessionPolicy(),
        tools=ToolBox(),
        emit=lambda out: asyncio.sleep(0),
        record=lambda record: None,
        settings=SessionSettings(connect_attempts=2, connect_backoff_s=0.2, command_wait_s=30),
    )
    run = asyncio.create_task(session.run())
    # Released when the session gives up (about 0.6 s), not after the 30 s wait.
    await asyncio.wait_for(session.command(Text(type="text", text="anyone?")), 10)
    assert run.done() or session._ended.is_set()
    await run
    assert session.end_reason == "upstream_unavailable"


def test_replay_keeps_recent_turns_verbatim_and_condenses_older_ones():
    history = [
        Turn(
            koe_item_id=f"k{i}",
            role="user" if i % 2 == 0 else "assistant",
            text=f"turn {i} " + "x" * 300,
        )
        for i in range(20)
    ]
    pairs = replay_items(history, budget_chars=2000, recent_turns=4)
    assert [koe for koe, _ in pairs] == ["", "k16", "k17", "k18", "k19"]
    items = [item for _, item in pairs]
    assert items[0]["role"] == "system"
    summary = items[0]["content"][0]["text"]
    assert summary.startswith("Earlier in this conversation")
    assert "turn 0" in summary and len(summary) <= 2100
    verbatim = [i["content"][0]["text"] for i in items[1:]]
    assert verbatim == [t.text for t in history[-4:]]
    assert items[-1]["content"][0]["type"] == "output_text"
    assert items[-2]["content"][0]["type"] == "input_text"


async def test_latency_from_end_of_speech_to_first_answer_audio_is_recorded(fake):
    fake.chunk_delay_s = 0.05
    h = await start(fake, mode=TurnMode.HANDS_FREE)
    await fake.push({"type": "input_audio_buffer.speech_started", "item_id": "item_vad"})
    await fake.push({"type": "input_audio_buffer.speech_stopped", "item_id": "item_vad"})
    await h.wait(lambda: any(m.get("status") == "thinking" for m in h.messages("status")))
    await h.session.command(Text(type="text", text="and then?"))
    await h.wait(lambda: bool(h.records_of("latency")))
    (latency,) = h.records_of("latency")
    assert latency["item_id"] == h.messages("audio.start")[0]["item_id"]
    assert latency["ms"] >= 50  # at least the first chunk's delay
    await h.stop()


async def test_a_refused_response_create_does_not_silence_the_assistant(fake):
    fake.reject_next_response = True
    h = await start(fake)
    await h.session.command(Text(type="text", text="first"))
    await h.wait(lambda: bool(h.messages("error")))
    await h.session.command(Text(type="text", text="second"))
    conn = await fake.wait_for("response.create", count=2)
    await h.wait(lambda: len(h.answers()) == 1)
    assert all(e.get("event_id", "").startswith("koe_") for e in conn.of_type("response.create"))
    await h.stop()


async def test_a_session_refusing_the_policy_is_not_used(fake):
    fake.refuse_policy = True
    session, _emitted, _records = await run_to_end(
        fake, SessionSettings(connect_attempts=2, connect_backoff_s=0.01)
    )
    assert session.end_reason == "upstream_unavailable"
    assert len(fake.connections) == 2
    assert not any(
        e.get("type") == "input_audio_buffer.append" for c in fake.connections for e in c.received
    )


async def test_after_a_rollover_ids_stay_and_an_unanswered_question_is_answered(fake):
    h = await start(fake)
    await spoken_turn(h, fake)
    created_before = [m["item_id"] for m in h.messages("item.created")]
    assert len(created_before) == 2
    # A question goes up, and the connection breaks as its answer begins.
    fake.chunk_delay_s = 0.5
    await h.session.command(Text(type="text", text="what about holidays?"))
    await fake.wait_for("response.create", count=2)
    # The answer has begun (its item is announced) when the connection breaks: without this
    # wait the drop could come first, and there would be no cut-off answer to see.
    await h.wait(lambda: len(h.messages("item.created")) == 4)
    await fake.drop()
    await fake.wait_connections(2)
    second = await fake.wait_for("response.create", within=10)
    assert_replayed(second, fake.user_transcript, "You get twenty days.", "what about holidays?")
    fake.chunk_delay_s = 0.0
    # The first answer and the new one; the cut one is closed too (interrupted), not finished.
    await h.wait(lambda: len([a for a in h.answers() if not a.get("interrupted")]) == 2, within=10)
    # The replayed turns were not announced again; only the new answer is new.
    created_after = [m["item_id"] for m in h.messages("item.created")]
    assert created_after[:2] == created_before
    # New: the typed question, the answer cut off with the old session, the new answer. The
    # replayed items were not announced again.
    roles = [m["role"] for m in h.messages("item.created")]
    assert roles == ["user", "assistant", "user", "assistant", "assistant"]
    assert len(set(created_after)) == 5
    assert len(second.of_type("response.create")) == 1
    await h.stop()


async def test_a_session_that_keeps_dying_young_ends_instead_of_hammering_the_provider(fake):
    fake.drop_after_update = True
    session, emitted, _records = await run_to_end(
        fake, SessionSettings(connect_backoff_s=0.01, max_quick_drops=3)
    )
    assert session.end_reason == "upstream_unavailable"
    assert len(fake.connections) == 4  # the first session and three quick reconnects
    assert emitted[-1]["code"] == "upstream_unavailable"


async def test_replay_follows_conversation_order_not_transcript_arrival(fake):
    h = await start(fake)
    for event in [
        {
            "type": "conversation.item.added",
            "previous_item_id": None,
            "item": {"id": "item_u", "type": "message", "role": "user"},
        },
        {
            "type": "conversation.item.added",
            "previous_item_id": "item_u",
            "item": {"id": "item_a", "type": "message", "role": "assistant"},
        },
        {
            "type": "response.output_audio_transcript.done",
            "item_id": "item_a",
            "transcript": "The answer.",
        },
        # The user's transcription finishes last, as it often does.
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_u",
            "transcript": "The question?",
        },
    ]:
        await fake.push(event)
    await h.wait(lambda: len(h.records_of("transcript")) == 2)
    await fake.expire()
    await fake.wait_connections(2)
    second = await fake.wait_for("conversation.item.create", count=2)
    replayed = [
        (e["item"]["role"], e["item"]["content"][0]["text"])
        for e in second.of_type("conversation.item.create")
    ]
    assert replayed == [("user", "The question?"), ("assistant", "The answer.")]
    await h.stop()


async def test_a_refused_replay_item_does_not_swallow_later_items(fake):
    h = await start(fake)
    await spoken_turn(h, fake)
    fake.refuse_item_creates = 1  # the first replayed item of the next session
    await fake.expire()
    await fake.wait_connections(2)
    await h.wait(lambda: bool(h.records_of("rollover")))
    before = len(h.messages("item.created"))
    await h.session.command(Text(type="text", text="a new question"))
    await h.wait(lambda: len(h.answers()) == 2)
    new = h.messages("item.created")[before:]
    assert [m["role"] for m in new] == ["user", "assistant"]
    typed = [r for r in h.records_of("transcript") if r.get("typed")]
    assert typed[-1]["text"] == "a new question" and typed[-1]["item_id"] == new[0]["item_id"]
    await h.stop()


async def test_a_provider_expiring_every_session_at_once_is_given_up(fake):
    fake.expire_after_update = True
    session, _emitted, _records = await run_to_end(
        fake, SessionSettings(connect_backoff_s=0.01, max_quick_drops=3)
    )
    assert session.end_reason == "upstream_unavailable"
    assert len(fake.connections) == 4


async def test_reconnections_ask_the_rate_gate_first(fake):
    asked: list[float] = []
    answers = [0.2, 0.0]  # the first ask must wait, the second may go

    async def gate() -> float:
        asked.append(asyncio.get_running_loop().time())
        return answers.pop(0)

    h = await start(fake)
    h.session._reconnect_gate = gate
    await spoken_turn(h, fake)
    started = asyncio.get_running_loop().time()
    await fake.expire()
    await fake.wait_connections(2, within=5)
    assert len(asked) == 2
    assert asked[1] - started >= 0.2  # it waited as told before connecting again
    await h.stop()


async def test_a_question_typed_while_a_tool_runs_waits_for_the_tool_answer(fake):
    async def slow_search(arguments: dict[str, Any]) -> ToolOutcome:
        await asyncio.sleep(0.3)
        return ToolOutcome(output='{"passages": []}')

    fake.tool_plan = [("search_knowledge", '{"query": "x"}')]
    h = await start(fake, tools=ToolBox(functions={"search_knowledge": slow_search}))
    await h.session.command(Text(type="text", text="first"))
    await h.wait(lambda: any(m.get("status") == "searching" for m in h.messages("status")))
    await h.session.command(Text(type="text", text="second, while searching"))
    conn = await fake.wait_for("response.create", count=3, within=10)
    kinds = [
        "output"
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
        else e["type"]
        for e in conn.received
        if e["type"] in ("response.create", "conversation.item.create")
    ]
    # The tool's answer goes up before any further response.create.
    assert kinds.index("output") < [i for i, k in enumerate(kinds) if k == "response.create"][1]
    await h.wait(lambda: len(h.answers()) == 2, within=10)
    assert not h.messages("error")
    await h.stop()


async def test_each_turns_audio_is_handed_over_when_recording_is_on(fake):
    stored: list[tuple[str, str, bytes]] = []
    h = await start(fake, store_audio=lambda item, role, pcm: stored.append((item, role, pcm)))
    await spoken_turn(h, fake)
    await h.wait(lambda: len(stored) == 2)
    (user_item, user_role, user_pcm), (answer_item, answer_role, answer_pcm) = stored
    assert (user_role, user_pcm) == ("user", SECOND_OF_AUDIO)  # exactly what was sent
    assert (
        answer_role == "assistant"
        and answer_pcm
        and answer_pcm == b"\x10\x00" * (len(answer_pcm) // 2)
    )
    created = {m["role"]: m["item_id"] for m in h.messages("item.created")}
    assert (user_item, answer_item) == (created["user"], created["assistant"])  # Koe's ids
    await h.stop()
