from voice.realtime.policy import (
    DEFAULT_INSTRUCTIONS,
    SessionPolicy,
    TurnMode,
    VadKind,
    session_update_event,
    turn_mode_update_event,
)


def test_session_update_carries_the_whole_ga_policy():
    event = session_update_event(SessionPolicy(transcription_language="ja"), TurnMode.HANDS_FREE)
    assert event["type"] == "session.update"
    session = event["session"]
    assert session["type"] == "realtime"
    assert session["instructions"] == DEFAULT_INSTRUCTIONS
    assert session["output_modalities"] == ["audio"]
    audio_in = session["audio"]["input"]
    assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_in["transcription"] == {"model": "gpt-4o-mini-transcribe", "language": "ja"}
    assert audio_in["turn_detection"]["type"] == "server_vad"
    assert audio_in["turn_detection"]["create_response"] is True
    assert audio_in["turn_detection"]["interrupt_response"] is True
    assert session["audio"]["output"]["voice"] == "alloy"
    (tool,) = session["tools"]
    assert tool["type"] == "function" and tool["name"] == "search_knowledge"
    assert tool["parameters"]["required"] == ["query"]
    assert session["tool_choice"] == "auto"


def test_semantic_vad_and_push_to_talk():
    semantic = session_update_event(SessionPolicy(vad=VadKind.SEMANTIC), TurnMode.HANDS_FREE)
    detection = semantic["session"]["audio"]["input"]["turn_detection"]
    assert detection == {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }
    manual = session_update_event(SessionPolicy(), TurnMode.PUSH_TO_TALK)
    assert manual["session"]["audio"]["input"]["turn_detection"] is None


def test_mode_switch_touches_only_turn_detection():
    event = turn_mode_update_event(SessionPolicy(), TurnMode.PUSH_TO_TALK)
    assert event == {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
    }


def test_no_tools_means_tool_choice_none_and_unlimited_tokens_spelled_inf():
    event = session_update_event(
        SessionPolicy(tools=(), max_output_tokens=None), TurnMode.HANDS_FREE
    )
    assert event["session"]["tools"] == []
    assert event["session"]["tool_choice"] == "none"
    assert event["session"]["max_output_tokens"] == "inf"
