"""Koe's roles. Each is a Django group of the same name."""

from enum import StrEnum

from django.utils.translation import gettext as _


class Role(StrEnum):
    EMPLOYEE = "employee"  # may talk to the assistant
    KNOWLEDGE_ADMIN = "knowledge_admin"  # manages the documents the assistant answers from
    AUDITOR = "auditor"  # reviews conversations, read-only


ALL_ROLES: tuple[Role, ...] = tuple(Role)


def role_label(role: Role) -> str:
    """The role's name as people read it, in the request's language."""
    return {
        Role.EMPLOYEE: _("Employee"),
        Role.KNOWLEDGE_ADMIN: _("Knowledge admin"),
        Role.AUDITOR: _("Auditor"),
    }[role]
