"""Text to speech: hibari-tts for English (24 kHz, the protocol's rate), Open JTalk for
Japanese (pyopenjtalk-plus, whose wheel carries its dictionary and voice; 48 kHz, halved).

The engine speaks whichever a sentence is written in: a sentence with kana or kanji is
Japanese."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import cache

from voice.engine.audio import downsample_48k_to_24k, float_to_pcm16
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


JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_JAPANESE_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")


class JapaneseSpeaker:
    """Open JTalk with the voice and dictionary inside pyopenjtalk-plus (no download)."""

    def __init__(self) -> None:
        import pyopenjtalk

        self._tts = pyopenjtalk.tts
        self._lock = threading.Lock()  # Open JTalk keeps one engine per process

    def sentences(self, text: str) -> list[str]:
        return [s.strip() for s in _JAPANESE_SENTENCE.findall(text) if s.strip()]

    def speak(self, sentence: str) -> bytes:
        with self._lock:
            samples, _rate = self._tts(sentence)  # 48 kHz, in the range of int16
        return float_to_pcm16(downsample_48k_to_24k(samples / 32768.0))


class BilingualSpeaker:
    """English sentences in hibari's voice, Japanese ones in Open JTalk's."""

    voice = VOICE

    def __init__(self, english: Speaker, japanese: JapaneseSpeaker) -> None:
        self._english = english
        self._japanese = japanese

    def sentences(self, text: str) -> list[str]:
        if JAPANESE.search(text):
            return self._japanese.sentences(text)
        return self._english.sentences(text)

    def speak(self, sentence: str) -> bytes:
        if JAPANESE.search(sentence):
            return self._japanese.speak(sentence)
        return self._english.speak(sentence)


@cache
def speaker_default() -> Speaker:
    """The process-wide English speaker (loaded once)."""
    return Speaker()


@cache
def speaker_bilingual_default() -> BilingualSpeaker:
    """The process-wide speaker of both languages (what the engine uses)."""
    return BilingualSpeaker(speaker_default(), JapaneseSpeaker())
