"""Text to speech: hibari-tts, English, 24 kHz (the protocol's rate: no resampling)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import cache

from voice.engine.audio import float_to_pcm16
from voice.engine.checksums import model_file_verified

# The one voice that ships inside the package; the others would be downloaded, which Koe
# never does. Every requested voice name is spoken with it.
VOICE = "heart"


class Speaker:
    """One loaded hibari model."""

    voice = VOICE

    def __init__(self, *, threads: int = 1) -> None:
        import hibari
        from hibari import voices

        # Fails instead of downloading if the bundled voice were ever missing.
        model_file_verified("hibari/heart", voices.voice_path(VOICE, download_missing=False))
        self._tts = hibari.Hibari(voice=VOICE, threads=threads)
        self._lock = threading.Lock()

    def sentences(self, text: str) -> list[str]:
        """The text in the pieces the model speaks at once (sentences)."""
        import hibari

        return [s for s in hibari.Hibari.split_sentences(text) if s.strip()]

    def speak(self, sentence: str) -> bytes:
        """PCM16 24 kHz for one sentence."""
        with self._lock:
            chunks = list(self._tts.stream(sentence))
        return b"".join(float_to_pcm16(chunk) for chunk in chunks)

    def stream(self, text: str) -> Iterator[bytes]:
        """PCM16 24 kHz, one piece per sentence, each as soon as it is made."""
        for sentence in self.sentences(text):
            yield self.speak(sentence)


@cache
def speaker_default() -> Speaker:
    """The process-wide speaker (loaded once)."""
    return Speaker()
