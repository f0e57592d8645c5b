"""A live Koe for tests: a real `daphne portal.asgi:application` process on 127.0.0.1 that
serves this session's test database (the embedded server's, or DATABASE_URL's), so what a test
writes with the ORM the server reads, and what the server stores the test reads.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings

from conftest import database_env_for_tests, free_port
from portal.nginx import nginx_standalone_config

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("KOE_TEST_ARTIFACTS", settings.KOE_VAR_DIR / "test-artifacts"))


class LiveKoe:
    def __init__(
        self,
        *,
        media_root: Path,
        upstream_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.engine_key = "koe-browser-test-" + secrets.token_hex(8)
        env = {
            **os.environ,
            **database_env_for_tests(),
            "DJANGO_SETTINGS_MODULE": "portal.settings_test",
            "KOE_ENV": "development",
            "KOE_REALTIME_PROVIDER": "local",
            "KOE_ENGINE_ENABLED": "true",
            "KOE_LOCAL_REALTIME_KEY": self.engine_key,
            "KOE_LOCAL_REALTIME_URL": upstream_url or f"ws://127.0.0.1:{self.port}/v1/realtime",
            "KOE_UPSTREAM_CONNECTS_PER_MINUTE": "200",
            "KOE_MEDIA_DIR": str(media_root),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        if "REDIS_URL" not in (extra_env or {}):
            env.pop("REDIS_URL", None)  # one process: its own in-memory layer and cache
        self.log = ARTIFACTS / f"daphne-{self.port}.log"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "portal.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: see {self.log}")
            try:
                health = self.url + "/healthz"  # always http://127.0.0.1
                with urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"daphne did not become healthy: see {self.log}")

    def warm_engine(self) -> None:
        """One typed turn through the engine, so that its models are loaded before a test's
        microphone timeline starts."""
        from websockets.sync.client import connect

        url = f"ws://127.0.0.1:{self.port}/v1/realtime?model=koe-local"
        headers = {"Authorization": f"Bearer {self.engine_key}"}
        with connect(url, additional_headers=headers, open_timeout=30) as ws:
            ws.send(
                json.dumps(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": "Hello"}],
                        },
                    }
                )
            )
            ws.send(json.dumps({"type": "response.create"}))
            while json.loads(ws.recv(timeout=120))["type"] != "response.done":
                pass

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


class Nginx:
    """Debian's nginx on 127.0.0.1 in front of the given Koe processes (round robin)."""

    def __init__(self, *, upstreams: list[str], prefix: Path) -> None:
        binary = "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed: run ./koe test, which installs it")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix.mkdir(parents=True, exist_ok=True)
        config = prefix / "nginx.conf"
        config.write_text(
            nginx_standalone_config(
                prefix=str(prefix), listen=f"127.0.0.1:{self.port}", upstreams=upstreams
            )
        )
        self.process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):  # noqa: S310
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"nginx exited: see {prefix}/error.log") from None
                time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
