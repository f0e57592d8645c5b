"""Reads about users and their roles."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import PermissionDenied

from accounts.models import Preference
from accounts.roles import Role


def user_roles(*, user: AbstractBaseUser | AnonymousUser) -> frozenset[Role]:
    """The Koe roles the user holds (empty for anonymous or inactive users)."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    names = Group.objects.filter(user__pk=user.pk, name__in=[r.value for r in Role]).values_list(
        "name", flat=True
    )
    return frozenset(Role(name) for name in names)


def user_has_role(*, user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    """Whether the user holds `role`."""
    return role in user_roles(user=user)


def transcription_language_of(*, user: AbstractBaseUser | AnonymousUser) -> str:
    """The language the user chose for transcription ("" = detect), or the site's default."""
    chosen = (
        Preference.objects.filter(user_id=user.pk)
        .values_list("transcription_language", flat=True)
        .first()
        if user.is_authenticated
        else None
    )
    return settings.KOE_TRANSCRIPTION_LANGUAGE if chosen is None else chosen


def user_id_signed_in(user: AbstractBaseUser | AnonymousUser) -> int:
    """The acting user's id, for selectors that read only their own records; PermissionDenied
    for anyone not signed in."""
    if not user.is_authenticated or user.pk is None:
        raise PermissionDenied("sign in first")
    return int(user.pk)
