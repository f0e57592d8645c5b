"""The engine's WebSocket server: the Realtime GA paths, key check, one EngineSession each.

Paths: `/v1/realtime` (OpenAI's), `/openai/v1/realtime` (Azure GA) and `/openai/realtime`
(Azure preview's query shape). The key is taken from `Authorization: Bearer KEY` or `api-key`.
`?intent=transcription` (or a transcription session.update) makes a transcription session.
"""

from __future__ import annotations

import hmac
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from voice.engine.session import EngineModels, EngineSession

logger = logging.getLogger(__name__)

PATHS = ("/v1/realtime", "/openai/v1/realtime", "/openai/realtime")
# The service's audio frames are small; a generous cap still bounds memory per socket.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@cache
def engine_models_default(*, workers: int = 2) -> EngineModels:
    """The process's models, loaded once, and the bounded pool all sessions share."""
    from knowledge.embeddings import LocalE5Embedder
    from voice.engine.stt import transcriber_default, transcriber_japanese_default
    from voice.engine.tts import speaker_bilingual_default
    from voice.engine.vad import SpeechDetector

    SpeechDetector()  # loads and checks the VAD model here, not on a session's event loop
    return EngineModels(
        stt=transcriber_default(),
        japanese_stt=transcriber_japanese_default,  # loaded on the first Japanese session
        tts=speaker_bilingual_default(),
        embedder=LocalE5Embedder(threads=1),
        pool=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="koe-engine"),
    )


def _json_response(status: HTTPStatus, message: str, code: str) -> Response:
    body = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    )
    headers = Headers([("Content-Type", "application/json")])
    return Response(status.value, status.phrase, headers, body.encode())


def _given_key(request: Request) -> str:
    bearer = request.headers.get("Authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip()
    return request.headers.get("api-key", "")


async def engine_serve(
    *,
    host: str,
    port: int,
    key: str,
    models: EngineModels,
    max_session_seconds: float = 1800,
) -> Server:
    """Start serving; the caller closes the returned server."""
    if not key:
        raise ValueError("the engine needs a key: an open engine would serve anyone")

    def check(connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if path not in PATHS:
            return _json_response(
                HTTPStatus.NOT_FOUND, f"No realtime endpoint at {path}.", "not_found"
            )
        if request.headers.get("Origin"):
            # Server to server only: a browser page may not use the engine's key.
            return _json_response(
                HTTPStatus.FORBIDDEN, "Browsers may not connect to the engine.", "forbidden"
            )
        if not hmac.compare_digest(_given_key(request).encode(), key.encode()):
            return _json_response(
                HTTPStatus.UNAUTHORIZED, "Incorrect API key provided.", "invalid_api_key"
            )
        return None

    async def handler(connection: ServerConnection) -> None:
        query = parse_qs(urlsplit(connection.request.path if connection.request else "").query)
        kind = "transcription" if query.get("intent") == ["transcription"] else "realtime"

        async def send(event: dict[str, object]) -> None:
            await connection.send(json.dumps(event, ensure_ascii=False))

        async def close(code: int, reason: str) -> None:
            await connection.close(code, reason)

        session = EngineSession(
            send=send, close=close, models=models, kind=kind, max_seconds=max_session_seconds
        )
        try:
            await session.start()
            async for message in connection:
                await session.handle(message)
        except ConnectionClosed:
            pass
        finally:
            await session.stop()

    return await serve(
        handler,
        host,
        port,
        process_request=check,
        max_size=MAX_MESSAGE_BYTES,
        compression=None,  # audio does not compress; deflate would only cost CPU
    )
