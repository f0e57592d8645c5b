import base64
import json
from typing import Any

from voice.realtime.downstream import AudioLedger, Downstream, ItemIds, usage_summary
from voice.realtime.policy import (
    DEFAULT_INSTRUCTIONS,
    SessionPolicy,
    TurnMode,
    session_update_event,
)


def pcm(ms: int) -> str:
    return base64.b64encode(b"\x01\x00" * 24 * ms).decode()


def as_json(out) -> str:
    return json.dumps([o for o in out if isinstance(o, dict)], ensure_ascii=False)


def test_policy_and_tool_traffic_never_reach_the_browser():
    down = Downstream()
    session = session_update_event(SessionPolicy(), TurnMode.HANDS_FREE)["session"]
    upstream = [
        {"type": "session.created", "session": session},
        {"type": "session.updated", "session": session},
        {
            "type": "response.output_item.added",
            "item": {"id": "fc1", "type": "function_call", "name": "search_knowledge"},
        },
        {"type": "response.function_call_arguments.delta", "item_id": "fc1", "delta": '{"query"'},
        {
            "type": "response.function_call_arguments.done",
            "call_id": "c1",
            "name": "search_knowledge",
            "arguments": '{"query": "leave policy"}',
        },
        {
            "type": "conversation.item.added",
            "item": {"id": "fc1", "type": "function_call", "name": "search_knowledge"},
        },
        {
            "type": "conversation.item.added",
            "item": {"id": "out1", "type": "function_call_output", "output": "secret passage"},
        },
        {"type": "rate_limits.updated", "rate_limits": []},
        {"type": "some.future.event", "instructions": DEFAULT_INSTRUCTIONS},
    ]
    out = [o for event in upstream for o in down.translate(event)]
    assert out == []


def test_a_spoken_turn_becomes_transcripts_status_and_binary_audio():
    down = Downstream()
    events: list[dict[str, Any]] = [
        {"type": "input_audio_buffer.speech_started", "item_id": "u1"},
        {"type": "input_audio_buffer.speech_stopped", "item_id": "u1"},
        {
            "type": "conversation.item.added",
            "previous_item_id": None,
            "item": {"id": "u1", "type": "message", "role": "user"},
        },
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "delta": "休暇",
        },
        {"type": "response.created", "response": {"id": "r1"}},
        {
            "type": "conversation.item.added",
            "previous_item_id": "u1",
            "item": {"id": "a1", "type": "message", "role": "assistant"},
        },
        {"type": "response.output_audio.delta", "item_id": "a1", "delta": pcm(40)},
        {"type": "response.output_audio_transcript.delta", "item_id": "a1", "delta": "二十日"},
        {"type": "response.output_audio.delta", "item_id": "a1", "delta": pcm(20)},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "transcript": "休暇は何日？",
        },
        {"type": "response.output_audio.done", "item_id": "a1"},
        {
            "type": "response.output_audio_transcript.done",
            "item_id": "a1",
            "transcript": "二十日です",
        },
        {
            "type": "response.done",
            "response": {
                "id": "r1",
                "output": [{"type": "message"}],
                "usage": {
                    "input_tokens": 120,
                    "output_tokens": 40,
                    "input_token_details": {
                        "text_tokens": 100,
                        "audio_tokens": 20,
                        "cached_tokens": 64,
                    },
                    "output_token_details": {"text_tokens": 10, "audio_tokens": 30},
                },
            },
        },
    ]
    out = [o for e in events for o in down.translate(e)]
    user_id = down.ids.koe_id("u1")
    assistant_id = down.ids.koe_id("a1")
    assert user_id.startswith("k_") and user_id != "u1"
    frames = [o for o in out if isinstance(o, bytes)]
    assert [len(f) for f in frames] == [40 * 48, 20 * 48]
    messages = [o for o in out if isinstance(o, dict)]
    assert messages[0] == {"type": "speech.started"}
    assert {"type": "status", "status": "speaking"} in messages
    assert {
        "type": "item.created",
        "item_id": assistant_id,
        "role": "assistant",
        "previous_item_id": user_id,
    } in messages
    assert {
        "type": "transcript.done",
        "role": "user",
        "item_id": user_id,
        "text": "休暇は何日？",
    } in messages
    assert {
        "type": "transcript.done",
        "role": "assistant",
        "item_id": assistant_id,
        "text": "二十日です",
    } in messages
    assert {"type": "audio.start", "item_id": assistant_id} in messages
    assert {"type": "audio.done", "item_id": assistant_id} in messages
    usage = next(m for m in messages if m["type"] == "usage")["usage"]
    assert usage["input_cached_tokens"] == 64 and usage["output_audio_tokens"] == 30
    assert messages[-1] == {"type": "status", "status": "listening"}
    # The audio start marker precedes the first binary frame.
    assert out.index({"type": "audio.start", "item_id": assistant_id}) < out.index(frames[0])


def test_response_with_tool_calls_does_not_announce_listening():
    out = Downstream().translate(
        {"type": "response.done", "response": {"output": [{"type": "function_call"}]}}
    )
    assert {"type": "status", "status": "listening"} not in out


def test_broken_audio_delta_is_dropped_not_fatal():
    assert (
        Downstream().translate(
            {"type": "response.output_audio.delta", "item_id": "a", "delta": "@@not base64@@"}
        )
        == []
    )


def test_truncation_is_clamped_to_audio_received_and_skipped_without_audio():
    ledger = AudioLedger()
    assert ledger.audio_end_ms("a1", 500) is None
    ledger.received("a1", 48 * 800)
    assert ledger.audio_end_ms("a1", 500) == 500
    assert ledger.audio_end_ms("a1", 5000) == 800


def test_item_ids_survive_a_rollover_rebind():
    ids = ItemIds()
    koe = ids.koe_id("old_upstream")
    ids.rebind(koe, "new_upstream")
    assert ids.upstream_id(koe) == "new_upstream"
    assert ids.koe_id("new_upstream") == koe
    assert ids.known_koe_id("old_upstream") is None


def test_usage_summary_tolerates_missing_details():
    assert usage_summary({"input_tokens": 5}) == {
        "input_tokens": 5,
        "output_tokens": 0,
        "input_text_tokens": 0,
        "input_audio_tokens": 0,
        "input_cached_tokens": 0,
        "input_cached_text_tokens": 0,
        "input_cached_audio_tokens": 0,
        "output_text_tokens": 0,
        "output_audio_tokens": 0,
    }


def test_a_typed_question_comes_back_with_its_words_as_the_transcript():
    down = Downstream()
    out = down.translate(
        {
            "type": "conversation.item.added",
            "previous_item_id": None,
            "item": {
                "id": "kt1_1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "How many days of leave?"}],
            },
        }
    )
    created, transcript = out
    assert isinstance(created, dict) and isinstance(transcript, dict)
    assert created["type"] == "item.created" and created["role"] == "user"
    assert transcript == {
        "type": "transcript.done",
        "role": "user",
        "item_id": created["item_id"],
        "text": "How many days of leave?",
    }
