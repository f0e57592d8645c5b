"""Authentication backend: allauth's, with passwords refused when local accounts are off."""

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from django.conf import settings
from django.http import HttpRequest


class KoeAuthenticationBackend(AuthenticationBackend):
    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> Any:
        # Defence in depth: with Entra as the only way in, no form anywhere (allauth's, the
        # admin's, a future one) may turn a password into a session.
        if not settings.KOE_LOCAL_ACCOUNTS:
            return None
        return super().authenticate(request, **credentials)
