"""How Koe talks to Microsoft Entra ID: allauth's generic OpenID Connect provider, configured.

Plain data, no Django imports, so that settings and tests build the provider the same way.
"""

from __future__ import annotations

from typing import Any

PROVIDER_ID = "entra"


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
