import pytest


@pytest.fixture(scope="session")
def speaker():
    from voice.engine.tts import speaker_default

    return speaker_default()


@pytest.fixture(scope="session")
def transcriber():
    from voice.engine.stt import transcriber_default

    return transcriber_default()


@pytest.fixture(scope="session")
def say(speaker):
    """PCM16 24 kHz of a sentence, spoken by the neural TTS (Whisper mishears espeak)."""
    cache: dict[str, bytes] = {}

    def speak(text: str) -> bytes:
        if text not in cache:
            cache[text] = b"".join(speaker.stream(text))
        return cache[text]

    return speak
