"""The engine driven by a client nobody here wrote: the official openai SDK's realtime client.

Assertions are on the raw JSON the engine sends (the SDK does not validate event types).
"""

import base64
import json

import pytest
from openai import AsyncOpenAI

from voice.tests.engine.test_speech import QUESTION, silence

SEARCH_TOOL = {
    "type": "function",
    "name": "search_knowledge",
    "description": "Search the company documents.",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
}
PASSAGES = json.dumps(
    {
        "passages": [
            {
                "source": "Leave and Holidays",
                "where": "Annual paid leave",
                "text": "Full-time employees receive twenty days of annual paid leave each year.",
            }
        ]
    }
)


def connect(base_url: str, key: str = "engine-key"):
    client = AsyncOpenAI(api_key=key, websocket_base_url=f"{base_url}/v1")
    return client.realtime.connect(model="koe-local")


async def receive(conn):
    return json.loads(await conn.recv_bytes())


async def until(conn, wanted: str, *, seen: list | None = None):
    """Raw events up to and including the first of type `wanted`."""
    events = [] if seen is None else seen
    while True:
        event = await receive(conn)
        events.append(event)
        if event["type"] == wanted:
            return events


def types(events):
    return [e["type"] for e in events]


async def test_session_created_then_update_answers_the_full_session(engine):
    async with connect(engine) as conn:
        created = await receive(conn)
        assert created["type"] == "session.created"
        assert created["session"]["type"] == "realtime"
        assert created["session"]["audio"]["output"]["format"] == {
            "type": "audio/pcm",
            "rate": 24000,
        }
        await conn.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "instructions": "Be brief.",
                    "tools": [SEARCH_TOOL],
                },
            }
        )
        updated = await receive(conn)
        assert updated["type"] == "session.updated"
        assert updated["session"]["instructions"] == "Be brief."
        assert updated["session"]["tools"] == [SEARCH_TOOL]
        # Unchanged parts are all there: the full effective session.
        assert updated["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"


async def test_a_typed_question_goes_through_the_tool_and_is_answered_in_speech(
    engine, transcriber
):
    async with connect(engine) as conn:
        await receive(conn)
        await conn.send(
            {"type": "session.update", "session": {"type": "realtime", "tools": [SEARCH_TOOL]}}
        )
        await until(conn, "session.updated")
        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": QUESTION}],
                },
            }
        )
        await conn.send({"type": "response.create"})
        first = await until(conn, "response.done")
        call = next(e for e in first if e["type"] == "response.function_call_arguments.done")
        assert call["name"] == "search_knowledge"
        assert json.loads(call["arguments"]) == {"query": QUESTION}
        assert first[-1]["response"]["status"] == "completed"
        assert types(first).index("response.created") < types(first).index(
            "response.function_call_arguments.done"
        )

        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": call["call_id"],
                    "output": PASSAGES,
                },
            }
        )
        await conn.send({"type": "response.create"})
        second = await until(conn, "response.done")
        order = types(second)
        for earlier, later in [
            ("response.created", "response.output_item.added"),
            ("response.output_item.added", "response.content_part.added"),
            ("response.content_part.added", "response.output_audio.delta"),
            ("response.output_audio.delta", "response.output_audio.done"),
            ("response.output_audio_transcript.done", "response.content_part.done"),
            ("response.content_part.done", "response.output_item.done"),
        ]:
            assert order.index(earlier) < order.index(later), (earlier, later)
        transcript = next(
            e for e in second if e["type"] == "response.output_audio_transcript.done"
        )["transcript"]
        assert transcript.startswith("According to Leave and Holidays:")
        assert "twenty days" in transcript
        audio = b"".join(
            base64.b64decode(e["delta"])
            for e in second
            if e["type"] == "response.output_audio.delta"
        )
        heard = transcriber.transcribe(audio).lower()
        assert "twenty days" in heard or "20 days" in heard
        usage = second[-1]["response"]["usage"]
        assert usage["output_token_details"]["audio_tokens"] > 0
        assert (await receive(conn))["type"] == "rate_limits.updated"


async def test_a_spoken_question_is_detected_transcribed_and_sent_to_the_tool(engine, say):
    async with connect(engine) as conn:
        await receive(conn)
        await conn.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "tools": [SEARCH_TOOL],
                    "audio": {"input": {"transcription": {"model": "whisper-1"}}},
                },
            }
        )
        await until(conn, "session.updated")
        audio = silence(600) + say(QUESTION) + silence(1_200)
        for start in range(0, len(audio), 4_800):
            chunk = base64.b64encode(audio[start : start + 4_800]).decode()
            await conn.send({"type": "input_audio_buffer.append", "audio": chunk})
        events = await until(conn, "response.done")
        order = types(events)
        assert order[:3] == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
        ]
        item_id = events[0]["item_id"]
        assert events[1]["item_id"] == item_id == events[2]["item_id"]
        completed = next(
            e
            for e in events
            if e["type"] == "conversation.item.input_audio_transcription.completed"
        )
        assert completed["item_id"] == item_id and "paid leave" in completed["transcript"].lower()
        call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
        assert "paid leave" in json.loads(call["arguments"])["query"].lower()


async def test_invalid_events_get_errors_shaped_like_the_services(engine):
    async with connect(engine) as conn:
        await receive(conn)
        await conn.send({"type": "no.such.event", "event_id": "evt_1"})
        error = await receive(conn)
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        assert error["error"]["param"] == "type" and error["error"]["event_id"] == "evt_1"
        await conn.send({"type": "input_audio_buffer.append", "audio": "%%%not base64"})
        assert (await receive(conn))["error"]["param"] == "audio"
        await conn.send({"type": "input_audio_buffer.commit"})
        assert (await receive(conn))["error"]["code"] == "input_audio_buffer_commit_empty"
        await conn.send({"type": "response.cancel"})
        assert (await receive(conn))["error"]["code"] == "response_cancel_not_active"
        await conn.send({"type": "session.update", "session": {"instructions": "x"}})
        assert (await receive(conn))["error"]["param"] == "session.type"


async def test_a_wrong_key_is_refused(engine):
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused:
        async with connect(engine, key="wrong") as conn:
            await receive(conn)
    assert refused.value.response.status_code == 401
    assert b"Incorrect API key" in refused.value.response.body


async def send_audio(conn, audio: bytes, frame_ms: int = 100):
    step = frame_ms * 48
    for start in range(0, len(audio), step):
        chunk = base64.b64encode(audio[start : start + step]).decode()
        await conn.send({"type": "input_audio_buffer.append", "audio": chunk})


async def use_push_to_talk(conn):
    """Turn detection off: the client commits each turn."""
    await conn.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )
    await until(conn, "session.updated")


async def ask_in_text(conn, text: str):
    await conn.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
    )
    await conn.send({"type": "response.create"})


async def test_push_to_talk_commits_by_hand_and_answers_the_transcript(engine, say):
    async with connect(engine) as conn:
        await receive(conn)
        await conn.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            }
        )
        updated = await until(conn, "session.updated")
        assert updated[-1]["session"]["audio"]["input"]["turn_detection"] is None
        await send_audio(conn, say(QUESTION) + silence(300))
        await conn.send({"type": "input_audio_buffer.commit"})
        committed = await until(conn, "input_audio_buffer.committed")
        assert "input_audio_buffer.speech_started" not in types(committed)  # no VAD
        await conn.send({"type": "response.create"})
        events = await until(conn, "response.done")
        transcript = next(
            e for e in events if e["type"] == "response.output_audio_transcript.done"
        )["transcript"]
        assert (
            transcript.startswith("I heard your question:") and "paid leave" in transcript.lower()
        )


@pytest.fixture
async def slow_engine(engine_models):
    """The engine with a speaker that takes a second per sentence, so that an answer is
    certainly still being spoken when the test interrupts it."""
    import dataclasses
    import time

    from voice.engine.server import engine_serve

    class SlowSpeaker:
        def sentences(self, text):
            return engine_models.tts.sentences(text)

        def speak(self, sentence):
            time.sleep(1.0)
            return engine_models.tts.speak(sentence)

    models = dataclasses.replace(engine_models, tts=SlowSpeaker())
    server = await engine_serve(host="127.0.0.1", port=0, key="engine-key", models=models)
    port = next(iter(server.sockets)).getsockname()[1]
    yield f"ws://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


async def test_cancel_ends_the_answer_and_a_second_response_is_refused_meanwhile(slow_engine):
    async with connect(slow_engine) as conn:
        await receive(conn)
        await ask_in_text(conn, "Please tell me everything about the holidays.")
        await until(conn, "response.created")
        await conn.send({"type": "response.create", "event_id": "evt_twice"})
        await conn.send({"type": "response.cancel"})
        events = await until(conn, "response.done")
        refusal = next(e for e in events if e["type"] == "error")
        assert refusal["error"]["code"] == "conversation_already_has_active_response"
        assert refusal["error"]["event_id"] == "evt_twice"
        done = events[-1]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}


async def test_speech_during_an_answer_interrupts_it(slow_engine, say):
    async with connect(slow_engine) as conn:
        await receive(conn)
        await ask_in_text(conn, "Tell me a long story about the company.")
        await until(conn, "response.output_audio.delta")  # the first sentence is out
        await send_audio(conn, silence(200) + say(QUESTION))
        events = await until(conn, "response.done")
        assert "input_audio_buffer.speech_started" in types(events)
        assert events[-1]["response"]["status"] == "cancelled"
        assert events[-1]["response"]["status_details"]["reason"] == "turn_detected"
        # The answer so far is kept, incomplete, for the client to truncate.
        (cut,) = events[-1]["response"]["output"]
        assert cut["status"] == "incomplete" and cut["role"] == "assistant"
        assert cut["content"][0]["transcript"].startswith("I heard your question")
        # Its audio, transcript, part and item are closed first, as the service does, so that
        # a client records what was said.
        closing = [
            e
            for e in events
            if e.get("item_id") == cut["id"] or (e.get("item") or {}).get("id") == cut["id"]
        ]
        assert types(closing)[-5:] == [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
        ]
        said = next(e for e in closing if e["type"] == "response.output_audio_transcript.done")
        assert said["transcript"] == cut["content"][0]["transcript"]
        assert closing[-1]["item"]["status"] == "incomplete"


async def test_without_create_response_a_turn_is_committed_but_not_answered(engine, say):
    import asyncio

    async with connect(engine) as conn:
        await receive(conn)
        await conn.send(
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "audio": {"input": {"turn_detection": {"create_response": False}}},
                },
            }
        )
        await until(conn, "session.updated")
        await send_audio(conn, silence(400) + say(QUESTION) + silence(1_200))
        await until(conn, "conversation.item.done")
        with pytest.raises(TimeoutError):
            while True:  # anything may come but a response
                event = await asyncio.wait_for(receive(conn), 1.5)
                assert not event["type"].startswith("response."), event


async def test_truncate_retrieve_and_delete_items(engine):
    async with connect(engine) as conn:
        await receive(conn)
        await ask_in_text(conn, "Hello there.")
        events = await until(conn, "response.done")
        item_id = next(e for e in events if e["type"] == "response.output_item.done")["item"]["id"]
        await conn.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 500,
            }
        )
        truncated = await until(conn, "conversation.item.truncated")
        assert truncated[-1]["audio_end_ms"] == 500
        await conn.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 60_000,
            }
        )
        assert (await until(conn, "error"))[-1]["error"]["param"] == "audio_end_ms"
        await conn.send({"type": "conversation.item.retrieve", "item_id": item_id})
        retrieved = (await until(conn, "conversation.item.retrieved"))[-1]["item"]
        assert retrieved["content"][0]["transcript"] is None  # not heard, not said
        await conn.send({"type": "conversation.item.delete", "item_id": item_id})
        assert (await until(conn, "conversation.item.deleted"))[-1]["item_id"] == item_id
        await conn.send({"type": "conversation.item.retrieve", "item_id": item_id})
        assert (await until(conn, "error"))[-1]["error"]["param"] == "item_id"


async def test_text_only_answers(engine):
    async with connect(engine) as conn:
        await receive(conn)
        await conn.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "output_modalities": ["text"]},
            }
        )
        await until(conn, "session.updated")
        await ask_in_text(conn, "Hello there.")
        events = await until(conn, "response.done")
        assert "response.output_audio.delta" not in types(events)
        text = next(e for e in events if e["type"] == "response.output_text.done")["text"]
        assert text.startswith("I heard your question: Hello there.")


async def test_a_transcription_session_only_transcribes(engine, say):
    import asyncio

    client = AsyncOpenAI(api_key="engine-key", websocket_base_url=f"{engine}/v1")
    async with client.realtime.connect(
        model="koe-local", extra_query={"intent": "transcription"}
    ) as conn:
        created = await receive(conn)
        assert created["session"]["type"] == "transcription"
        await send_audio(conn, silence(500) + say(QUESTION) + silence(1_200))
        events = await until(conn, "conversation.item.input_audio_transcription.completed")
        assert "paid leave" in events[-1]["transcript"].lower()
        await conn.send({"type": "response.create"})
        assert "transcription session" in (await until(conn, "error"))[-1]["error"]["message"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receive(conn), 1.0)  # and nothing else: no answer


async def test_the_session_expires_with_session_expired_then_1001(engine_models):
    from websockets.asyncio.client import connect as ws_connect

    from voice.engine.server import engine_serve

    server = await engine_serve(
        host="127.0.0.1", port=0, key="k", models=engine_models, max_session_seconds=0.5
    )
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        async with ws_connect(
            f"ws://127.0.0.1:{port}/openai/v1/realtime?model=x", additional_headers={"api-key": "k"}
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            error = json.loads(await ws.recv())
            assert error["type"] == "error" and error["error"]["code"] == "session_expired"
            await ws.wait_closed()
            assert ws.close_code == 1001
    finally:
        server.close()
        await server.wait_closed()


async def test_clear_drops_the_buffered_audio(engine, say):
    async with connect(engine) as conn:
        await receive(conn)
        await use_push_to_talk(conn)
        await send_audio(conn, say(QUESTION))
        await conn.send({"type": "input_audio_buffer.clear"})
        assert (await until(conn, "input_audio_buffer.cleared"))[-1]["type"] == (
            "input_audio_buffer.cleared"
        )
        await conn.send({"type": "input_audio_buffer.commit"})
        error = (await until(conn, "error"))[-1]["error"]
        assert error["code"] == "input_audio_buffer_commit_empty" and "0.00ms" in error["message"]


async def test_audio_that_cannot_be_transcribed_says_so(engine_models, say):
    import dataclasses

    from voice.engine.server import engine_serve

    class BrokenWhisper:
        def transcribe(self, pcm):
            raise RuntimeError("the model crashed")

    models = dataclasses.replace(engine_models, stt=BrokenWhisper())
    server = await engine_serve(host="127.0.0.1", port=0, key="engine-key", models=models)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        client = AsyncOpenAI(api_key="engine-key", websocket_base_url=f"ws://127.0.0.1:{port}/v1")
        async with client.realtime.connect(
            model="koe-local", extra_query={"intent": "transcription"}
        ) as conn:
            await receive(conn)
            await send_audio(conn, silence(400) + say(QUESTION) + silence(1_200))
            events = await until(conn, "conversation.item.input_audio_transcription.failed")
            committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
            assert events[-1]["item_id"] == committed["item_id"]
            assert events[-1]["error"]["code"] == "transcription_failed"
    finally:
        server.close()
        await server.wait_closed()


async def test_an_item_is_done_only_once_it_is_complete(engine):
    async with connect(engine) as conn:
        await receive(conn)
        await conn.send(
            {"type": "session.update", "session": {"type": "realtime", "tools": [SEARCH_TOOL]}}
        )
        await until(conn, "session.updated")
        await ask_in_text(conn, "How many days of paid leave do I get?")
        events = await until(conn, "response.done")
        call = next(e for e in events if e["type"] == "response.output_item.added")["item"]
        done = [
            e
            for e in events
            if e["type"] == "conversation.item.done" and e["item"]["id"] == call["id"]
        ]
        assert len(done) == 1 and done[0]["item"]["status"] == "completed"
        assert done[0]["item"]["arguments"]  # the whole call, not the empty one just added
        order = types(events)
        assert order.index("response.output_item.done") < order.index(
            "conversation.item.done", order.index("response.output_item.added")
        )


@pytest.mark.parametrize(
    "audio",
    [
        {"input": {"turn_detection": {"type": "server_vad", "threshold": "high"}}},
        {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": -5}}},
        {"input": {"turn_detection": "server_vad"}},
        {"input": {"format": {"type": "audio/pcm", "rate": "x"}}},
        {"input": {"format": "pcm16"}},
        "loud",
    ],
)
async def test_malformed_session_updates_are_refused_and_the_session_goes_on(engine, audio):
    async with connect(engine) as conn:
        await receive(conn)
        await conn.send(
            {
                "type": "session.update",
                "event_id": "evt_bad",
                "session": {"type": "realtime", "audio": audio},
            }
        )
        error = await receive(conn)
        assert error["type"] == "error" and error["error"]["event_id"] == "evt_bad"
        assert error["error"]["type"] == "invalid_request_error"
        # The session is unchanged and still answers.
        await ask_in_text(conn, "Hello?")
        events = await until(conn, "response.done")
        assert events[-1]["response"]["status"] == "completed"
        assert events[-1]["response"]["audio"]["output"]["voice"]


async def test_push_to_talk_and_back_keeps_the_turn_clock_right(engine, say):
    async with connect(engine) as conn:
        await receive(conn)
        await send_audio(conn, silence(1000))
        for detection in (None, {"type": "server_vad"}):
            await conn.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {"input": {"turn_detection": detection}},
                    },
                }
            )
            await until(conn, "session.updated")
        await send_audio(conn, silence(1000) + say(QUESTION) + silence(1500))
        events = await until(conn, "response.done")
        started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
        # 2 s of audio came before the question, whatever the settings were meanwhile.
        assert 2000 - 300 - 100 <= started["audio_start_ms"] <= 2000 + 100
        answer = events[-1]["response"]["output"][0]["content"][0]["transcript"]
        assert "paid leave" in answer.lower()


async def test_a_push_to_talk_turn_is_transcribed_once(engine_models, say):
    import dataclasses

    from voice.engine.server import engine_serve

    calls = []

    class CountingTranscriber:
        def transcribe(self, pcm):
            calls.append(len(pcm))
            return engine_models.stt.transcribe(pcm)

    models = dataclasses.replace(engine_models, stt=CountingTranscriber())
    server = await engine_serve(host="127.0.0.1", port=0, key="engine-key", models=models)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        async with connect(f"ws://127.0.0.1:{port}") as conn:
            await receive(conn)
            await use_push_to_talk(conn)
            await send_audio(conn, say(QUESTION))
            await conn.send({"type": "input_audio_buffer.commit"})
            await conn.send({"type": "response.create"})
            events = await until(conn, "response.done")
            assert "paid leave" in events[-1]["response"]["output"][0]["content"][0]["transcript"]
            assert len(calls) == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_silence_in_hands_free_mode_is_not_kept(engine_models):
    from voice.engine.session import EngineSession

    sent = []

    async def send(event):
        sent.append(event)

    async def close(code, reason):
        pass

    session = EngineSession(
        send=send, close=close, models=engine_models, kind="realtime", max_seconds=60
    )
    frame = base64.b64encode(silence(100)).decode()
    for _ in range(300):  # 30 s of nobody speaking
        await session.handle(json.dumps({"type": "input_audio_buffer.append", "audio": frame}))
    await session.stop()
    assert not [e for e in sent if e["type"] == "error"]
    # Only the padding a turn starting now could reach back to is held, not 30 s (1.4 MB).
    assert len(session._buffer) <= (300 + 500 + 100) * 48


async def test_a_language_the_packaged_models_lack_is_refused_clearly(engine):
    client = AsyncOpenAI(api_key="engine-key", websocket_base_url=f"{engine}/v1")
    async with client.realtime.connect(
        model="koe-local", extra_query={"intent": "transcription"}
    ) as conn:
        await receive(conn)
        await conn.send(
            {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {"input": {"transcription": {"model": "m", "language": "fr"}}},
                },
            }
        )
        error = (await receive(conn))["error"]
        assert error["param"] == "session.audio.input.transcription.language"
        assert "'fr'" in error["message"] and "not available offline" in error["message"]
        for language in ("ja", "en", ""):
            await conn.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {"input": {"transcription": {"language": language}}},
                    },
                }
            )
            assert (await receive(conn))["type"] == "session.updated"
