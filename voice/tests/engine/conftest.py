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
def engine_models(speaker, transcriber):
    from concurrent.futures import ThreadPoolExecutor

    from knowledge.embeddings import LocalE5Embedder
    from voice.engine.session import EngineModels

    pool = ThreadPoolExecutor(max_workers=2)
    yield EngineModels(stt=transcriber, tts=speaker, embedder=LocalE5Embedder(), pool=pool)
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
