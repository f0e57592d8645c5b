"""allauth adapters: who may sign up, and how an Entra identity becomes a Koe user."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.http import HttpRequest


class KoeAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Local accounts are made by administrators (or the demo command), never by visitors.
        return False


class KoeSocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        # Anyone the tenant lets through may have a user; roles decide what they can do.
        return True

    def populate_user(self, request: HttpRequest, sociallogin: Any, data: dict[str, Any]) -> Any:
        user = super().populate_user(request, sociallogin, data)
        if not user.email:
            # Entra id_tokens often carry no `email` claim; the UPN is the work address.
            claims = sociallogin.account.extra_data.get("id_token") or {}
            upn = str(claims.get("preferred_username") or "")
            # Guests' UPNs (alice_fabrikam.com#EXT#@contoso.onmicrosoft.com) are no mailbox.
            if "@" in upn and "#EXT#" not in upn.upper():
                user.email = upn.lower()
        return user
