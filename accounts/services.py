"""Writes about users and their roles."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

from accounts.models import Preference
from accounts.roles import ALL_ROLES, Role

logger = logging.getLogger(__name__)


def role_groups_ensure() -> dict[Role, Group]:
    """Create the Django group of every Koe role that is missing; return all of them."""
    return {role: Group.objects.get_or_create(name=role.value)[0] for role in ALL_ROLES}


def user_roles_from_claims(
    *, claims: Mapping[str, object], role_map: Mapping[str, str]
) -> set[Role]:
    """Koe roles named by the `roles` claim of an Entra id_token, through role_map."""
    raw = claims.get("roles") or []
    values = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
    roles: set[Role] = set()
    for value in values:
        koe_role = role_map.get(str(value))
        if koe_role is not None and koe_role in Role._value2member_map_:
            roles.add(Role(koe_role))
    return roles


@transaction.atomic
def user_roles_set(*, user: AbstractUser, roles: Iterable[Role]) -> None:
    """Make `roles` exactly the user's Koe roles (other groups are left alone)."""
    groups = role_groups_ensure()
    wanted = set(roles)
    koe_groups = list(groups.values())
    user.groups.remove(*[g for g in koe_groups if Role(g.name) not in wanted])
    user.groups.add(*[groups[r] for r in wanted])
    # Knowledge admins work in the Django admin; nobody else needs it (superusers keep theirs).
    is_staff = user.is_superuser or Role.KNOWLEDGE_ADMIN in wanted
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


def user_roles_sync_from_claims(
    *, user: AbstractUser, claims: Mapping[str, object], role_map: Mapping[str, str]
) -> set[Role]:
    """Apply the app roles of a fresh Entra sign-in: added roles granted, removed roles revoked."""
    roles = user_roles_from_claims(claims=claims, role_map=role_map)
    user_roles_set(user=user, roles=roles)
    logger.info("roles of user %s from Entra: %s", user.pk, sorted(roles) or "none")
    return roles


@transaction.atomic
def user_superuser_grant(*, identifier: str, grant: bool = True) -> AbstractUser:
    """Make the user with this username or e-mail a superuser (and staff), or take it away."""
    user_model = get_user_model()
    matches = list(
        user_model.objects.filter(username=identifier)
        or user_model.objects.filter(email__iexact=identifier)
    )
    if len(matches) != 1:
        found = "no user" if not matches else f"{len(matches)} users"
        raise LookupError(f"{found} with username or e-mail {identifier!r}; sign in once first.")
    (user,) = matches
    assert isinstance(user, AbstractUser)
    user.is_superuser = grant
    user.is_staff = grant or user.groups.filter(name=Role.KNOWLEDGE_ADMIN.value).exists()
    user.save(update_fields=["is_superuser", "is_staff"])
    logger.warning("superuser %s for user %s", "granted" if grant else "revoked", user.pk)
    return user


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    roles: tuple[Role, ...]
    superuser: bool = False


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("emi", "koe-demo-emi", (Role.EMPLOYEE,)),
    DemoUser("kenji", "koe-demo-kenji", (Role.KNOWLEDGE_ADMIN,)),
    DemoUser("aiko", "koe-demo-aiko", (Role.AUDITOR,)),
    DemoUser("admin", "koe-demo-admin", ALL_ROLES, superuser=True),
)


@transaction.atomic
def demo_users_create() -> tuple[DemoUser, ...]:
    """Create (or reset) the development demo users: one per role and one with every role."""
    user_model = get_user_model()
    for demo in DEMO_USERS:
        user, _ = user_model.objects.get_or_create(username=demo.username)
        assert isinstance(user, AbstractUser)
        user.email = f"{demo.username}@example.com"
        user.is_superuser = demo.superuser
        user.is_active = True
        user.set_password(demo.password)
        user.save()
        user_roles_set(user=user, roles=demo.roles)
    return DEMO_USERS


def preference_set(*, user: AbstractBaseUser, transcription_language: str) -> None:
    """Keep the language the user speaks to Koe ("" = detect)."""
    language = Preference.TranscriptionLanguage(transcription_language)
    Preference.objects.update_or_create(
        user_id=user.pk, defaults={"transcription_language": language.value}
    )
