"""Where the upstream Realtime session lives and how Koe authenticates to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

# Entra ID scope of Azure OpenAI (Cognitive Services) data-plane calls.
AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"
# Refresh a token this long before it expires, so no connection starts with a dying token.
TOKEN_REFRESH_MARGIN_S = 300


class ProviderKind(StrEnum):
    AZURE = "azure"  # Azure OpenAI GA: /openai/v1/realtime?model=DEPLOYMENT
    AZURE_PREVIEW = "azure_preview"  # deprecated: /openai/realtime?api-version=&deployment=
    OPENAI = "openai"  # api.openai.com/v1/realtime?model=
    LOCAL = "local"  # Koe's offline engine, same GA protocol


class ProviderConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ProviderConfig:
    kind: ProviderKind
    # Azure: https://RESOURCE.openai.azure.com; OpenAI: https://api.openai.com; local: its URL.
    endpoint: str
    # Azure: the deployment name; OpenAI and local: the model name.
    model: str
    api_key: str = ""
    # Azure only: without an api key, authenticate with Entra ID (managed identity in Azure).
    use_entra_id: bool = False
    api_version: str = "2025-04-01-preview"  # Azure preview only
    # The provider ends a session at this age (Azure 30 min, OpenAI 60): Koe rolls over before.
    max_session_seconds: int = 30 * 60

    def __post_init__(self) -> None:
        if not self.endpoint:
            raise ProviderConfigError(f"the {self.kind} provider needs an endpoint URL")
        if not self.model:
            raise ProviderConfigError(f"the {self.kind} provider needs a model or deployment name")
        if self.kind in (ProviderKind.AZURE, ProviderKind.AZURE_PREVIEW):
            if not self.api_key and not self.use_entra_id:
                raise ProviderConfigError("Azure OpenAI needs an api key or Entra ID")
        elif self.kind == ProviderKind.OPENAI and not self.api_key:
            raise ProviderConfigError("OpenAI needs an api key")
        if self.max_session_seconds <= 0:
            raise ProviderConfigError("max_session_seconds must be positive")


def realtime_url(config: ProviderConfig, *, intent: str = "") -> str:
    """The wss:// URL of a Realtime session for this provider; `intent="transcription"` asks
    for a transcription-only session (its model is then named in session.update)."""
    parts = urlsplit(config.endpoint)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    base = parts.path.rstrip("/")
    if config.kind == ProviderKind.AZURE:
        # GA: no api-version at all (with one, Azure answers 401).
        path, query = f"{base}/openai/v1/realtime", {"model": config.model}
    elif config.kind == ProviderKind.AZURE_PREVIEW:
        path = f"{base}/openai/realtime"
        query = {"api-version": config.api_version, "deployment": config.model}
    elif config.kind == ProviderKind.OPENAI:
        path, query = f"{base}/v1/realtime", {"model": config.model}
    else:
        # The local engine serves the GA paths; an endpoint given with its path is kept as is.
        path = base if base.endswith("/realtime") else f"{base}/v1/realtime"
        query = {"model": config.model}
    if intent:
        query = {k: v for k, v in query.items() if k == "api-version"} | {"intent": intent}
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


class AsyncTokenCredential(Protocol):
    """What Koe needs of azure-identity's async credentials."""

    async def get_token(self, *scopes: str) -> object: ...

    async def close(self) -> None: ...


class EntraTokenSource:
    """Entra ID access tokens for Azure OpenAI, cached and refreshed before they expire.

    One per process: every session shares the cached token, and only one refresh runs at a time.
    """

    def __init__(
        self,
        credential: AsyncTokenCredential,
        *,
        clock: Callable[[], float] = time.time,
        margin_s: int = TOKEN_REFRESH_MARGIN_S,
    ) -> None:
        self._credential = credential
        self._clock = clock
        self._margin = margin_s
        self._token = ""
        self._expires_on = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._clock() < self._expires_on - self._margin:
            return self._token
        async with self._lock:
            if self._clock() >= self._expires_on - self._margin:
                access = await self._credential.get_token(AZURE_SCOPE)
                self._token = str(access.token)  # type: ignore[attr-defined]
                self._expires_on = float(access.expires_on)  # type: ignore[attr-defined]
        return self._token

    async def close(self) -> None:
        await self._credential.close()


HeaderFactory = Callable[[], Awaitable[dict[str, str]]]


def auth_headers_factory(
    config: ProviderConfig, *, entra: EntraTokenSource | None = None
) -> HeaderFactory:
    """A coroutine function giving the headers of each new upstream connection."""

    async def headers() -> dict[str, str]:
        if config.kind in (ProviderKind.AZURE, ProviderKind.AZURE_PREVIEW):
            if config.api_key:
                return {"api-key": config.api_key}
            if entra is None:
                raise ProviderConfigError("Entra ID is configured but no token source was given")
            return {"Authorization": f"Bearer {await entra.token()}"}
        # OpenAI and the local engine take a bearer key (the local one may have none).
        return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}

    return headers


def upstream_connector(
    config: ProviderConfig,
    headers: HeaderFactory,
    *,
    open_timeout_s: float = 10.0,
    intent: str = "",
) -> Callable[[], Awaitable[object]]:
    """A coroutine function that opens one upstream WebSocket (fresh headers every time)."""
    from websockets.asyncio.client import connect

    url = realtime_url(config, intent=intent)

    async def open_connection() -> object:
        connection = await connect(
            url,
            additional_headers=await headers(),
            open_timeout=open_timeout_s,
            # Audio deltas are small, but session.updated echoes the whole policy.
            max_size=4 * 1024 * 1024,
            ping_interval=20,
            ping_timeout=20,
            # Bounded: if Koe cannot keep up, the connection applies back-pressure.
            max_queue=64,
        )
        if config.kind == ProviderKind.AZURE_PREVIEW:
            from voice.realtime.beta import BetaUpstream

            return BetaUpstream(connection)
        return connection

    return open_connection
