"""A fake Microsoft Entra ID on 127.0.0.1 that speaks real OpenID Connect.

Discovery, an authorization endpoint that consents at once for the user the test chose, a token
endpoint that checks the client secret, the redirect URI and PKCE (S256), and a JWKS with the
RSA key that signs the id_tokens. Claims are shaped like Entra's v2.0 id_tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class FakeEntra:
    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    next_claims: dict[str, Any] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    # Claims to force into the next id_token (another tenant's issuer, a foreign audience...).
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeEntra:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def authority(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    @property
    def issuer(self) -> str:
        return f"{self.authority}/{self.tenant_id}/v2.0"

    # -- the user who signs in next ---------------------------------------------------------------
    def sign_in_as(
        self,
        *,
        oid: str,
        preferred_username: str,
        roles: list[str] | None = None,
        email: str | None = None,
        name: str = "Test User",
    ) -> None:
        claims: dict[str, Any] = {
            "oid": oid,
            "sub": hashlib.sha256(f"{oid}:{self.client_id}".encode()).hexdigest()[:43],
            "tid": self.tenant_id,
            "name": name,
            "preferred_username": preferred_username,
        }
        if roles is not None:
            claims["roles"] = roles
        if email is not None:
            claims["email"] = email
        self.next_claims = claims

    # -- protocol ---------------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        base = f"{self.authority}/{self.tenant_id}"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update(kid=self._kid, use="sig", alg="RS256")
        return {"keys": [jwk]}

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """Return (status, redirect location or error text)."""
        problems = []
        if query.get("client_id") != self.client_id:
            problems.append("unknown client_id")
        if query.get("response_type") != "code":
            problems.append("response_type must be code")
        if "openid" not in query.get("scope", "").split():
            problems.append("scope must include openid")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            problems.append("PKCE with S256 is required")
        if problems:
            return 400, "; ".join(problems)
        code = secrets.token_urlsafe(16)
        self._codes[code] = {
            "claims": dict(self.next_claims),
            "nonce": query.get("nonce"),
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
        }
        sep = "&" if "?" in query["redirect_uri"] else "?"
        return 302, query["redirect_uri"] + sep + urlencode({"code": code, "state": query["state"]})

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None:
            return 400, {"error": "invalid_grant"}
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if digest.decode() != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        claims = {
            **grant["claims"],
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "ver": "2.0",
        }
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        claims.update(self.id_token_overrides)
        id_token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})
        return 200, {
            "token_type": "Bearer",
            "scope": "openid profile email",
            "expires_in": 3600,
            "access_token": secrets.token_urlsafe(32),
            "id_token": id_token,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                prefix = f"/{fake.tenant_id}"
                if parts.path == f"{prefix}/v2.0/.well-known/openid-configuration":
                    self._json(200, fake.discovery())
                elif parts.path == f"{prefix}/discovery/v2.0/keys":
                    self._json(200, fake.jwks())
                elif parts.path == f"{prefix}/oauth2/v2.0/authorize":
                    status, where = fake.authorize(query)
                    if status == 302:
                        self.send_response(302)
                        self.send_header("Location", where)
                        self.end_headers()
                    else:
                        self._json(status, {"error": "invalid_request", "error_description": where})
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path == f"/{fake.tenant_id}/oauth2/v2.0/token":
                    status, body = fake.token(form)
                    self._json(status, body)
                else:
                    self._json(404, {"error": "not_found"})

        return Handler
