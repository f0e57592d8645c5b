"""Reads about users and their roles."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from accounts.roles import Role


def user_roles(*, user: AbstractBaseUser | AnonymousUser) -> frozenset[Role]:
    """The Koe roles the user holds (empty for anonymous or inactive users)."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    names = user.groups.filter(name__in=[r.value for r in Role]).values_list("name", flat=True)  # type: ignore[union-attr]
    return frozenset(Role(name) for name in names)


def user_has_role(*, user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    """Whether the user holds `role`."""
    return role in user_roles(user=user)
