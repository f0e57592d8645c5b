"""The engine's local models: speech made by hibari is heard back by Whisper and the VAD."""

import numpy as np
import pytest

from voice.engine.audio import (
    BYTES_PER_MS,
    duration_ms,
    float_to_pcm16,
    pcm16_to_float,
    resample_24k_to_16k,
)
from voice.engine.vad import SpeechDetector, VadSettings

QUESTION = "How many days of paid leave do I get?"


def silence(ms: int) -> bytes:
    return b"\0\0" * (24 * ms)


def feed_in_frames(detector: SpeechDetector, audio: bytes, frame_ms: int = 100):
    events = []
    step = frame_ms * BYTES_PER_MS
    for start in range(0, len(audio), step):
        events += detector.feed(audio[start : start + step])
    return events


def test_pcm_conversions_round_trip_and_resample_to_16k():
    samples = np.sin(np.linspace(0, 200 * np.pi, 24_000)).astype(np.float32) * 0.5
    back = pcm16_to_float(float_to_pcm16(samples))
    assert np.max(np.abs(back - samples)) < 1e-4
    assert resample_24k_to_16k(samples).size == 16_000
    assert pcm16_to_float(b"\x01\x00\x02").size == 1  # half a sample is dropped, not an error
    assert duration_ms(silence(250)) == 250


def test_the_speech_of_the_tts_transcribes_back(say, transcriber):
    audio = say(QUESTION)
    assert 1_000 < duration_ms(audio) < 5_000
    text = transcriber.transcribe(audio).lower()
    assert "paid leave" in text and "days" in text


def test_silence_transcribes_to_nothing_much(transcriber):
    assert transcriber.transcribe(silence(50)) == ""  # too short to reach Whisper
    assert len(transcriber.transcribe(silence(2000))) < 20  # Whisper itself hears no sentence


def test_the_vad_clock_keeps_time_with_frames_of_any_size(say):
    """128-sample frames (an AudioWorklet's render quantum) are not a multiple of the 3:2
    resampling step; a detector that rounded each frame would drift by seconds an hour."""
    audio = silence(60_000) + say(QUESTION) + silence(1500)

    def turn(frame_bytes: int) -> tuple[int, int]:
        detector = SpeechDetector()
        events = []
        for start in range(0, len(audio), frame_bytes):
            events += detector.feed(audio[start : start + frame_bytes])
        (started, stopped) = events
        return started.at_ms, stopped.at_ms

    in_100ms_frames = turn(100 * 48)
    in_render_quanta = turn(128 * 2)
    assert 59_500 <= in_100ms_frames[0] <= 60_500
    # The same audio gives the same times, whatever the frames (within one 32 ms VAD window).
    assert all(abs(a - b) <= 32 for a, b in zip(in_100ms_frames, in_render_quanta, strict=True))


def test_the_vad_finds_one_turn_with_padding_and_the_silence_after_it(say):
    speech = say(QUESTION)
    audio = silence(1_000) + speech + silence(1_500)
    events = feed_in_frames(SpeechDetector(VadSettings(silence_duration_ms=500)), audio)
    assert [e.kind for e in events] == ["started", "stopped"]
    started, stopped = events
    speech_end = 1_000 + duration_ms(speech)
    assert 1_000 - 300 - 100 <= started.at_ms <= 1_000 + 400  # the padding reaches back
    assert speech_end - 300 <= stopped.at_ms <= speech_end + 500 + 200  # after the silence


def test_the_vad_hears_nothing_in_silence_and_respects_its_threshold(say):
    assert feed_in_frames(SpeechDetector(), silence(3_000)) == []
    deaf = SpeechDetector(VadSettings(threshold=1.01))
    assert feed_in_frames(deaf, say(QUESTION)) == []


def test_two_turns_never_overlap(say):
    audio = silence(500) + say(QUESTION) + silence(1_200) + say("Thank you.") + silence(1_200)
    events = feed_in_frames(SpeechDetector(), audio, frame_ms=40)
    kinds = [e.kind for e in events]
    assert kinds == ["started", "stopped"] * (len(kinds) // 2) and len(kinds) >= 4
    times = [e.at_ms for e in events]
    assert times == sorted(times)


def test_a_model_file_that_is_not_the_tested_one_is_refused(tmp_path):
    import pytest

    from voice.engine.checksums import ModelChecksumError, model_file_verified

    changed = tmp_path / "model.bin"
    changed.write_bytes(b"not the model")
    with pytest.raises(ModelChecksumError, match="uv sync --frozen"):
        model_file_verified("whisper-tiny.en/model.bin", str(changed))


MEETING_JA = "今日の会議では来月の予算について話し合いました。"


def test_japanese_speech_is_transcribed_by_the_packaged_multilingual_whisper(
    say_ja, transcriber_ja
):
    text = transcriber_ja.transcribe(say_ja(MEETING_JA))
    assert "予算" in text and "会議" in text, text


def test_the_multilingual_model_is_joined_once_and_checked(tmp_path):
    from voice.engine.checksums import ModelChecksumError, model_file_verified
    from voice.engine.stt import multilingual_model_folder

    folder = multilingual_model_folder(tmp_path)
    joined = folder / "model.bin"
    stamp = joined.stat().st_mtime_ns
    assert multilingual_model_folder(tmp_path) == folder
    assert joined.stat().st_mtime_ns == stamp  # not rewritten
    assert model_file_verified("whisper-base/model.bin", str(joined)) == joined
    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelChecksumError):
        model_file_verified("whisper-base/model.bin", str(broken))


def test_the_engine_speaks_each_sentence_in_its_own_language(say_ja, transcriber_ja, transcriber):
    from voice.engine.tts import speaker_bilingual_default

    speaker = speaker_bilingual_default()
    sentences = speaker.sentences("有給休暇は年に二十日です。申請は三日前までに行います。")
    assert sentences == ["有給休暇は年に二十日です。", "申請は三日前までに行います。"]
    spoken = transcriber_ja.transcribe(speaker.speak(sentences[1]))
    assert "前までに" in spoken, spoken  # (申請 comes back as its homophone 新生)
    english = transcriber.transcribe(speaker.speak("You get twenty days of paid leave."))
    assert "paid leave" in english.lower()
