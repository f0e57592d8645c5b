"""The offline engine inside Koe's own ASGI app (daphne), for the gateway's `local` provider.

Server to server only: a request carrying an Origin header comes from a browser and is refused,
as is one without the key. The models load in a thread on the first session.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from voice.engine.server import engine_models_default
from voice.engine.session import EngineSession


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def engine_key_valid(scope: dict[str, Any]) -> bool:
    """Whether the socket carries the engine's key (Bearer or api-key header)."""
    bearer = _header(scope, b"authorization")
    given = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
    given = given or _header(scope, b"api-key")
    expected = settings.KOE_LOCAL_REALTIME_KEY
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


class EngineConsumer(AsyncWebsocketConsumer):
    # Model sessions get nothing through the channel layer (see VoiceConsumer).
    channel_layer_alias = "no channel layer"
    session: EngineSession | None = None

    async def connect(self) -> None:
        if not settings.KOE_ENGINE_ENABLED or _header(self.scope, b"origin"):
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        if not engine_key_valid(self.scope):
            await self.close()
            return
        query = parse_qs(bytes(self.scope.get("query_string", b"")).decode())
        kind = "transcription" if query.get("intent") == ["transcription"] else "realtime"
        models = await asyncio.to_thread(engine_models_default, workers=settings.KOE_ENGINE_WORKERS)
        self.session = EngineSession(
            send=self._send_event,
            close=self._close,
            models=models,
            kind=kind,
            max_seconds=settings.KOE_ENGINE_MAX_SESSION_SECONDS,
        )
        await self.accept()
        await self.session.start()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        try:
            await self.session.handle(text_data if text_data is not None else bytes_data or b"")
        except Exception:
            # Channels would drop the socket without calling disconnect(): stop the session's
            # timers and tasks here, then close.
            await self.session.stop()
            self.session = None
            await self.close(code=1011)
            raise

    async def disconnect(self, code: int) -> None:
        if self.session is not None:
            await self.session.stop()

    async def _send_event(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event, ensure_ascii=False))

    async def _close(self, code: int, reason: str) -> None:
        await self.close(code=code, reason=reason)
