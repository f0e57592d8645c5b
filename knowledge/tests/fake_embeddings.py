"""A fake OpenAI / Azure OpenAI embeddings endpoint on 127.0.0.1, speaking the real wire format.

OpenAI: POST /v1/embeddings with `Authorization: Bearer KEY`.
Azure:  POST /openai/deployments/{deployment}/embeddings?api-version=V with `api-key: KEY`.
Vectors are hashed bags of words (and CJK bigrams), normalised: similar texts get similar
vectors, so retrieval through it behaves like retrieval, and the same text always gets the same
vector. `failures` holds HTTP statuses to answer before the next success.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

NATIVE = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
_WORD = re.compile(r"[a-z0-9]+")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]+")


def fake_vector(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    lowered = text.lower()
    features = _WORD.findall(lowered)
    for run in _CJK.findall(lowered):
        features += [run[i : i + 2] for i in range(max(1, len(run) - 1))]
    for feature in features:
        digest = hashlib.sha256(feature.encode()).digest()
        slot = int.from_bytes(digest[:4], "big") % dimensions
        vector[slot] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeEmbeddings:
    key: str = "test-key"
    failures: list[int] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        self.requests.append(request)
        azure = request.path.startswith("/openai/deployments/")
        given = request.headers.get("api-key") if azure else request.headers.get("authorization")
        if given != (self.key if azure else f"Bearer {self.key}"):
            return 401, {"error": {"message": "Incorrect API key provided.", "code": "401"}}
        if azure and not request.query.get("api-version"):
            return 404, {"error": {"message": "Resource not found", "code": "404"}}
        if self.failures:
            status = self.failures.pop(0)
            return status, {"error": {"message": f"fake failure {status}", "code": str(status)}}
        model = request.path.split("/")[3] if azure else request.body.get("model", "")
        raw = request.body.get("input")
        texts: list[str] = [raw] if isinstance(raw, str) else list(raw or [])
        size = int(request.body.get("dimensions") or NATIVE.get(model, 1536))
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(text, size)}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(t.split()) for t in texts)
        # Out of order on purpose: clients must sort by `index`.
        return 200, {
            "object": "list",
            "data": list(reversed(data)),
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeEmbeddings

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        request = Request(
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        status, payload = self.server.fake.answer(request)  # type: ignore[attr-defined]
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        if status == 429:
            self.send_header("retry-after", "0")
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet tests


class FakeEmbeddingsServer:
    """Run a FakeEmbeddings on 127.0.0.1 in a thread; a context manager."""

    def __init__(self, fake: FakeEmbeddings | None = None) -> None:
        self.fake = fake or FakeEmbeddings()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self.fake  # type: ignore[attr-defined]
        self.fake.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeEmbeddings:
        self._thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
