from typing import Any

from django.http import HttpRequest

from accounts.selectors import user_roles


def koe_roles(request: HttpRequest) -> dict[str, Any]:
    """Expose the signed-in user's roles to templates, for navigation only (views still check)."""
    user = getattr(request, "user", None)
    if user is None:
        return {"koe_roles": frozenset()}
    return {"koe_roles": frozenset(r.value for r in user_roles(user=user))}
