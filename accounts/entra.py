"""How Koe talks to Microsoft Entra ID: allauth's generic OpenID Connect provider, configured.

Plain data, no Django imports, so that settings and tests build the provider the same way.
"""

from __future__ import annotations

import json
from typing import Any

from accounts.roles import Role

PROVIDER_ID = "entra"

DEFAULT_ROLE_MAP = {
    "Koe.Employee": Role.EMPLOYEE.value,
    "Koe.KnowledgeAdmin": Role.KNOWLEDGE_ADMIN.value,
    "Koe.Auditor": Role.AUDITOR.value,
}


class RoleMapError(ValueError):
    pass


def entra_role_map_parse(raw: str) -> dict[str, str]:
    """Parse ENTRA_ROLE_MAP (JSON object: Entra app role value -> Koe role); empty = defaults.

    Checked at start-up: a typo here would otherwise silently give nobody that role.
    """
    if not raw.strip():
        return dict(DEFAULT_ROLE_MAP)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RoleMapError(f"ENTRA_ROLE_MAP is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise RoleMapError('ENTRA_ROLE_MAP must be a JSON object of strings: {"AppRole": "role"}')
    known = {role.value for role in Role}
    unknown = sorted(set(parsed.values()) - known)
    if unknown:
        raise RoleMapError(
            f"ENTRA_ROLE_MAP names unknown Koe roles {unknown}; known roles: {sorted(known)}"
        )
    return parsed


def entra_server_url(*, authority: str, tenant_id: str) -> str:
    """The tenant-specific v2.0 issuer; its discovery document lives beneath it."""
    return f"{authority.rstrip('/')}/{tenant_id}/v2.0"


def entra_socialaccount_providers(
    *, authority: str, tenant_id: str, client_id: str, client_secret: str
) -> dict[str, Any]:
    """The SOCIALACCOUNT_PROVIDERS value for one Entra tenant (empty app list when unset)."""
    apps = []
    if tenant_id and client_id and client_secret:
        apps.append(
            {
                "provider_id": PROVIDER_ID,
                "name": "Microsoft",
                "client_id": client_id,
                "secret": client_secret,
                "settings": {
                    "server_url": entra_server_url(authority=authority, tenant_id=tenant_id),
                    # Keep the id_token claims: Entra puts app roles only there, and the
                    # userinfo endpoint would replace them.
                    "fetch_userinfo": False,
                    # oid is stable per user across the tenant's apps; sub differs per app.
                    "uid_field": "oid",
                    "token_auth_method": "client_secret_post",
                },
            }
        )
    return {"openid_connect": {"OAUTH_PKCE_ENABLED": True, "APPS": apps}}
