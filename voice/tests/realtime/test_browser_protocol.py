import json

import pytest

from voice.realtime.browser_protocol import (
    MAX_AUDIO_FRAME_BYTES,
    MAX_TEXT_FRAME_BYTES,
    Commit,
    InboundLimits,
    Mode,
    ProtocolError,
    Text,
    Truncate,
    audio_frame_check,
    command_parse,
)
from voice.realtime.policy import TurnMode


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "commit"}, Commit(type="commit")),
        (
            {"type": "truncate", "item_id": "k_12ab", "played_ms": 1250},
            Truncate(type="truncate", item_id="k_12ab", played_ms=1250),
        ),
        (
            {"type": "text", "text": "有給休暇は何日ですか"},
            Text(type="text", text="有給休暇は何日ですか"),
        ),
        ({"type": "mode", "mode": "push_to_talk"}, Mode(type="mode", mode=TurnMode.PUSH_TO_TALK)),
    ],
)
def test_allowed_commands_parse(frame, expected):
    assert command_parse(json.dumps(frame, ensure_ascii=False)) == expected


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("not json", "invalid_json", "JSON objects"),
        ("[1, 2]", "invalid_json", "JSON objects"),
        (
            '{"type": "session.update", "session": {"instructions": "be evil"}}',
            "unknown_type",
            "'session.update'",
        ),
        ('{"type": "response.create"}', "unknown_type", "allowed: commit"),
        ('{"type": "commit", "instructions": "x"}', "invalid_message", "instructions"),
        ('{"type": "truncate", "item_id": "x", "played_ms": -5}', "invalid_message", "played_ms"),
        ('{"type": "truncate", "item_id": "../etc", "played_ms": 5}', "invalid_message", "item_id"),
        ('{"type": "text", "text": ""}', "invalid_message", "text"),
        ('{"type": "mode", "mode": "always_on"}', "invalid_message", "mode"),
    ],
)
def test_everything_else_is_a_clear_error(text, code, fragment):
    with pytest.raises(ProtocolError) as caught:
        command_parse(text)
    assert caught.value.code == code
    assert fragment in caught.value.message
    event = caught.value.event()
    assert event["type"] == "error" and event["code"] == code


def test_oversized_text_frame_is_refused_before_parsing():
    huge = json.dumps({"type": "text", "text": "a" * MAX_TEXT_FRAME_BYTES})
    with pytest.raises(ProtocolError, match="limited to"):
        command_parse(huge)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"", "invalid_audio"),
        (b"\x00" * 3, "invalid_audio"),
        (b"\x00" * 481, "invalid_audio"),  # odd length: not PCM16
        (b"\x00" * (MAX_AUDIO_FRAME_BYTES + 2), "frame_too_large"),
    ],
)
def test_bad_audio_frames(frame, code):
    with pytest.raises(ProtocolError) as caught:
        audio_frame_check(frame)
    assert caught.value.code == code


def test_real_time_audio_passes_and_a_flood_is_refused():
    now = [0.0]
    limits = InboundLimits(clock=lambda: now[0])
    # Ten seconds of 40 ms frames at real time are fine.
    for _ in range(250):
        now[0] += 0.04
        limits.audio_allowed(1920)
    # Then a client pushes 5 seconds of audio at once.
    with pytest.raises(ProtocolError, match="faster than real time"):
        for _ in range(125):
            limits.audio_allowed(1920)


def test_command_rate_is_bounded():
    now = [0.0]
    limits = InboundLimits(clock=lambda: now[0])
    for _ in range(20):
        limits.command_allowed()
    with pytest.raises(ProtocolError, match="at most 10 a second"):
        limits.command_allowed()
    now[0] += 1.0
    limits.command_allowed()


def test_control_characters_are_removed_from_typed_text():
    parsed = command_parse(json.dumps({"type": "text", "text": "leave\u0000 days\u0007?"}))
    assert parsed == Text(type="text", text="leave days?")
    with pytest.raises(ProtocolError, match="empty"):
        command_parse(json.dumps({"type": "text", "text": "\u0000\u0001"}))


def test_a_flood_of_tiny_frames_is_refused():
    now = [0.0]
    limits = InboundLimits(clock=lambda: now[0])
    with pytest.raises(ProtocolError, match="too many audio frames"):
        for _ in range(101):
            limits.audio_allowed(240)
