"""RealtimeSession when the model misbehaves: killed, hung, babbling or expiring mid-turn.

Whatever the upstream does, the browser is told (status `reconnecting`, then the `reconnected`
notice), the conversation goes on in a fresh session that gets its context, and no turn is
missing from the records.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from voice.realtime.browser_protocol import Commit, Text
from voice.realtime.policy import TurnMode
from voice.realtime.session import SessionSettings
from voice.tests.fake_upstream import FakeUpstream
from voice.tests.realtime.test_session import Harness, assert_replayed, run_to_end, start

ANSWER = "Full-time employees get twenty days of paid leave every year, says the handbook."
QUIET = b"\x01\x00" * 960  # 40 ms frames, told apart by their sample values
SPEECH = b"\x02\x00" * 960
LATE = b"\x03\x00" * 960


def quick(**overrides: float) -> SessionSettings:
    return SessionSettings(connect_backoff_s=0.01, **overrides)  # type: ignore[arg-type]


async def ask_and_wait_for_audio(h: Harness, fake: FakeUpstream) -> None:
    """A typed question whose answer is streaming slowly when this returns."""
    fake.answer = lambda conn: ANSWER
    fake.answer_audio_ms = 2000
    fake.chunk_delay_s = 0.15
    await h.session.command(Text(type="text", text="How much paid leave do I get?"))
    await h.wait(lambda: h.audio_bytes() >= 2 * 4800 and bool(h.messages("transcript.delta")))


def assert_told_and_resumed(h: Harness, reason: str) -> None:
    statuses = [m["status"] for m in h.messages("status")]
    assert "reconnecting" in statuses
    assert h.messages("notice") == [{"type": "notice", "notice": "reconnected"}]
    assert [r["reason"] for r in h.records_of("rollover")] == [reason]


@pytest.mark.parametrize("fault", ["drop", "expire"])
async def test_an_answer_cut_off_with_its_session_is_closed_kept_and_given_again(fake, fault):
    h = await start(fake, settings=quick())
    await ask_and_wait_for_audio(h, fake)
    cut_item = h.messages("audio.start")[0]["item_id"]
    await (fake.drop() if fault == "drop" else fake.expire())
    fake.chunk_delay_s = 0.0
    await fake.wait_connections(2)
    second = await fake.wait_for("response.create", within=10)
    await h.wait(lambda: len(h.records_of("transcript")) == 3, within=10)

    reason = "upstream_dropped" if fault == "drop" else "session_expired"
    assert_told_and_resumed(h, reason)
    # The page closes the cut answer: its audio ends and its words so far are marked.
    (closed,) = [m for m in h.messages("transcript.done") if m.get("interrupted")]
    assert closed["item_id"] == cut_item and closed["role"] == "assistant"
    assert closed["text"] and ANSWER.startswith(closed["text"]) and closed["text"] != ANSWER
    assert {"type": "audio.done", "item_id": cut_item} in h.messages("audio.done")
    # The fresh session has the question and is asked to answer it; the answer comes whole.
    assert_replayed(second, "How much paid leave do I get?")
    user, cut, answer = h.records_of("transcript")
    assert user["role"] == "user" and user["text"] == "How much paid leave do I get?"
    assert cut == {
        "item_id": cut_item,
        "role": "assistant",
        "text": closed["text"],
        "cut_off": reason,
    }
    assert answer["role"] == "assistant" and answer["text"] == ANSWER
    assert answer["item_id"] != cut_item
    await h.stop()


async def test_a_session_that_goes_quiet_mid_turn_is_replaced(fake):
    h = await start(fake, settings=quick(response_timeout_s=0.5))
    fake.ignore_responses = 1  # takes the question, then never says another word
    await h.session.command(Text(type="text", text="Is the office open on Monday?"))
    await fake.wait_connections(2, within=5)
    second = await fake.wait_for("response.create", within=5)
    assert_replayed(second, "Is the office open on Monday?")
    await h.wait(lambda: len(h.answers()) == 1)
    assert_told_and_resumed(h, "upstream_silent")
    await h.stop()


async def test_an_idle_conversation_is_not_taken_for_a_hung_session(fake):
    h = await start(fake, settings=quick(response_timeout_s=0.2))
    await h.session.command(Text(type="text", text="Hello?"))
    await h.wait(lambda: len(h.answers()) == 1)
    await asyncio.sleep(0.6)  # nobody asks anything: silence is expected
    assert len(fake.connections) == 1 and h.records_of("rollover") == []
    await h.stop()


async def test_a_new_session_that_never_speaks_is_abandoned_for_another(fake):
    fake.silent_connections = 1
    h = await start(fake, settings=quick(handshake_timeout_s=0.3))
    assert len(fake.connections) == 2  # the hung one, then a good one
    await h.session.command(Text(type="text", text="Hello?"))
    await h.wait(lambda: len(h.answers()) == 1)
    await h.stop()


async def test_a_service_that_only_ever_hangs_ends_the_conversation_clearly(fake):
    fake.silent_connections = 10
    session, emitted, records = await run_to_end(
        fake, quick(handshake_timeout_s=0.2, connect_attempts=2)
    )
    assert session.end_reason == "upstream_unavailable"
    assert emitted[-1]["code"] == "upstream_unavailable"
    assert records[-1].data == {"reason": "upstream_unavailable"}


async def test_a_stray_frame_is_ignored_but_a_babbling_session_is_replaced(fake):
    h = await start(fake, settings=quick(garbage_limit=3))
    await fake.babble("{not json", b"\x00\xff")
    await h.session.command(Text(type="text", text="First question"))
    await h.wait(lambda: len(h.answers()) == 1)
    assert len(fake.connections) == 1  # two bad frames are not worth a new session

    await fake.babble("[1, 2]", '{"no": "type"}', "null", "\ufffd\ufffd")
    await fake.wait_connections(2)
    second = await fake.wait_for("conversation.item.create", count=2)
    assert_replayed(second, "First question", "You get twenty days.")
    await h.wait(lambda: bool(h.messages("notice")))
    assert_told_and_resumed(h, "upstream_garbage")
    await h.session.command(Text(type="text", text="Second question"))
    await h.wait(lambda: len(h.answers()) == 2)
    await h.stop()


async def test_expiry_while_the_user_holds_to_talk_loses_none_of_their_words(fake):
    h = await start(fake, settings=quick(), mode=TurnMode.PUSH_TO_TALK)
    for _ in range(150):  # six seconds of speech into the first session
        await h.session.audio(SPEECH)
    await fake.wait_for("input_audio_buffer.append", count=150)
    await fake.expire()
    for _ in range(5):  # they go on talking while the new session opens
        await h.session.audio(LATE)
    await fake.wait_connections(2)
    await h.session.command(Commit(type="commit"))
    second = await fake.wait_for("response.create")
    # The whole turn, in order, reached the session that answers it.
    assert bytes(second.audio) == b"" and len(second.of_type("input_audio_buffer.commit")) == 1
    appended = b"".join(
        base64.b64decode(e["audio"]) for e in second.of_type("input_audio_buffer.append")
    )
    # Longer than the 3 s held while a session opens: the resend has its own copy.
    assert appended == SPEECH * 150 + LATE * 5
    await h.wait(lambda: len(h.answers()) == 1)
    await h.stop()


async def test_expiry_during_hands_free_speech_resends_the_speech_not_the_silence(fake):
    h = await start(fake, settings=quick(resend_quiet_ms=400), mode=TurnMode.HANDS_FREE)
    for _ in range(50):  # two seconds of room noise
        await h.session.audio(QUIET)
    await fake.push({"type": "input_audio_buffer.speech_started", "item_id": "item_speech"})
    await h.wait(lambda: h.session._user_speaking)
    for _ in range(25):
        await h.session.audio(SPEECH)
    await fake.wait_for("input_audio_buffer.append", count=75)
    await fake.expire()
    await fake.wait_connections(2)
    second = await fake.wait_for("input_audio_buffer.append", count=1)
    await h.wait(lambda: bytes(second.audio).endswith(SPEECH * 25))
    resent = bytes(second.audio)
    lead = resent[: -len(SPEECH * 25)]
    assert set(lead) <= {0x00, 0x01} and len(lead) <= 400 * 48 + len(QUIET)
    await h.stop()


async def test_a_question_heard_but_not_yet_answered_is_answered_after_a_drop(fake):
    h = await start(fake, settings=quick(), mode=TurnMode.HANDS_FREE)
    for _ in range(10):
        await h.session.audio(SPEECH)
    # The service's turn detection commits the question; the connection breaks before it
    # starts the answer it would create by itself.
    await fake._user_turn(fake.current)
    await h.wait(lambda: len(h.records_of("transcript")) == 1)
    await fake.drop()
    await fake.wait_connections(2)
    second = await fake.wait_for("response.create")
    assert_replayed(second, fake.user_transcript)
    await h.wait(lambda: len(h.answers()) == 1)
    assert not h.messages("error")
    await h.stop()


async def test_an_answer_still_streaming_when_the_conversation_ends_is_kept_as_far_as_it_got(fake):
    h = await start(fake, settings=quick())
    await ask_and_wait_for_audio(h, fake)
    await h.session.close("server_shutdown")
    await h.task
    kinds = [r.kind for r in h.records]
    assert kinds[-2:] == ["transcript", "ended"]
    cut = h.records[-2].data
    assert cut["cut_off"] == "server_shutdown" and ANSWER.startswith(cut["text"]) and cut["text"]
    assert h.records[-1].data == {"reason": "server_shutdown"}


async def test_a_planned_rollover_waits_for_the_turn_the_model_just_heard_to_be_committed(fake):
    settings = quick(max_session_seconds=1.0, rollover_margin_s=0.5)
    h = await start(fake, settings=settings, mode=TurnMode.HANDS_FREE)
    await fake.push({"type": "input_audio_buffer.speech_started", "item_id": "item_q"})
    for _ in range(10):
        await h.session.audio(SPEECH)
    await fake.push({"type": "input_audio_buffer.speech_stopped", "item_id": "item_q"})
    await asyncio.sleep(1.0)  # past the planned rollover time, but the turn is not committed
    assert len(fake.connections) == 1
    await fake._user_turn(fake.current)  # committed, and its transcript
    await h.wait(lambda: len(h.records_of("transcript")) == 1)
    await asyncio.sleep(0.3)
    assert len(fake.connections) == 1  # its answer is still due
    await fake.push({"type": "response.created", "response": {"id": "resp_q"}})
    await fake.push({"type": "response.done", "response": {"id": "resp_q", "output": []}})
    await fake.wait_connections(2)
    assert_replayed(await fake.wait_for("conversation.item.create"), fake.user_transcript)
    await h.stop()


async def test_a_session_that_never_answers_a_heard_question_is_replaced(fake):
    h = await start(fake, settings=quick(response_timeout_s=0.5), mode=TurnMode.HANDS_FREE)
    await fake._user_turn(fake.current)  # server turn detection: it should answer by itself
    await fake.wait_connections(2, within=5)
    second = await fake.wait_for("response.create")
    assert_replayed(second, fake.user_transcript)
    await h.wait(lambda: len(h.answers()) == 1)
    assert_told_and_resumed(h, "upstream_silent")
    await h.stop()
