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


@pytest.fixture(scope="session")
def engine_models(speaker, transcriber, transcriber_ja):
    from concurrent.futures import ThreadPoolExecutor

    from knowledge.embeddings import LocalE5Embedder
    from voice.engine.session import EngineModels

    pool = ThreadPoolExecutor(max_workers=2)
    from voice.engine.tts import BilingualSpeaker, JapaneseSpeaker

    yield EngineModels(
        stt=transcriber,
        tts=BilingualSpeaker(speaker, JapaneseSpeaker()),
        embedder=LocalE5Embedder(),
        pool=pool,
        japanese_stt=lambda: transcriber_ja,
    )
    pool.shutdown()


@pytest.fixture
async def engine(engine_models):
    """The engine on 127.0.0.1 (a free port), key "engine-key"; yields its base URL."""
    from voice.engine.server import engine_serve

    server = await engine_serve(
        host="127.0.0.1", port=0, key="engine-key", models=engine_models, max_session_seconds=60
    )
    port = next(iter(server.sockets)).getsockname()[1]
    yield f"ws://127.0.0.1:{port}"
    server.close()
    await server.wait_closed()


@pytest.fixture(scope="session")
def say_ja():
    """PCM16 24 kHz of a Japanese sentence, spoken by Open JTalk (pyopenjtalk-plus)."""
    from voice.engine.tts import JapaneseSpeaker

    speaker = JapaneseSpeaker()
    cache: dict[str, bytes] = {}

    def speak(text: str) -> bytes:
        if text not in cache:
            cache[text] = b"".join(speaker.speak(s) for s in speaker.sentences(text))
        return cache[text]

    return speak


@pytest.fixture(scope="session")
def transcriber_ja(tmp_path_factory):
    from pathlib import Path

    from voice.engine.stt import MULTILINGUAL_MODEL_NAME, Transcriber, multilingual_model_folder

    folder = multilingual_model_folder(Path(tmp_path_factory.mktemp("var")))
    return Transcriber(folder=folder, model=MULTILINGUAL_MODEL_NAME, language="ja")
