"""Sign-in receivers: Entra app roles become Koe roles on every sign-in."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import user_logged_in
from django.conf import settings
from django.dispatch import receiver

from accounts.services import user_roles_sync_from_claims


@receiver(user_logged_in, dispatch_uid="koe_entra_roles")
def entra_roles_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    sociallogin = kwargs.get("sociallogin")
    if sociallogin is None or sociallogin.account.provider != settings.ENTRA_PROVIDER_ID:
        return
    claims = sociallogin.account.extra_data.get("id_token") or {}
    user_roles_sync_from_claims(user=user, claims=claims, role_map=settings.ENTRA_ROLE_MAP)
