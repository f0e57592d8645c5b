"""Cutting each turn's audio out of what was sent, for the optional recording."""

from voice.realtime.turn_audio import BYTES_PER_MS, LOG_MS, QUIET_KEEP_MS, TurnAudio


def ms_of(value: int, ms: int) -> bytes:
    return bytes([value, 0]) * (24 * ms)


def test_push_to_talk_turns_run_from_commit_to_commit_and_clear_drops_audio():
    audio = TurnAudio(hands_free=False)
    audio.sent(ms_of(1, 500))
    assert audio.committed("item_1") == ms_of(1, 500)
    audio.sent(ms_of(2, 200))
    audio.cleared()  # the user let go too early: not part of the next turn
    audio.sent(ms_of(3, 300))
    assert audio.committed("item_2") == ms_of(3, 300)


def test_server_vad_turns_are_cut_where_the_model_heard_them():
    audio = TurnAudio()
    audio.sent(ms_of(0, 1000) + ms_of(7, 1500) + ms_of(0, 700))
    audio.speech_started("item_1", 1000)
    audio.speech_stopped("item_1", 2500)
    assert audio.committed("item_1") == ms_of(7, 1500)


def test_a_new_model_session_counts_from_zero_and_long_logs_are_bounded():
    audio = TurnAudio(hands_free=False)
    audio.sent(ms_of(1, 1000))
    audio.session_opened()
    audio.sent(ms_of(2, 100))
    audio.speech_started("item_9", 0)
    audio.speech_stopped("item_9", 100)
    assert audio.committed("item_9") == ms_of(2, 100)
    for _ in range(LOG_MS // 1000 + 30):
        audio.sent(ms_of(4, 1000))
    assert len(audio._log) <= LOG_MS * BYTES_PER_MS  # 2.5 minutes of talk, 2 minutes kept
    assert len(audio.committed("item_10")) == LOG_MS * BYTES_PER_MS


def test_answers_collect_their_deltas_once():
    audio = TurnAudio()
    audio.answer_audio("item_a", b"\x01\x00" * 10)
    audio.answer_audio("item_a", b"\x02\x00" * 10)
    assert audio.answer_done("item_a") == b"\x01\x00" * 10 + b"\x02\x00" * 10
    assert audio.answer_done("item_a") == b""


def test_hands_free_silence_is_not_kept_but_a_long_turn_is():
    audio = TurnAudio(hands_free=True)
    for _ in range(60):  # a quiet minute
        audio.sent(ms_of(0, 1000))
    assert len(audio._log) <= QUIET_KEEP_MS * BYTES_PER_MS
    # The model hears a turn that began a moment ago (its prefix padding), then 30 s of talk.
    audio.speech_started("item_long", 60_000 - 300)
    for _ in range(30):
        audio.sent(ms_of(5, 1000))
    audio.speech_stopped("item_long", 90_000)
    assert audio.committed("item_long") == ms_of(0, 300) + ms_of(5, 30_000)
