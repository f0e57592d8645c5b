"""Koe's roles. Each is a Django group of the same name."""

from enum import StrEnum


class Role(StrEnum):
    EMPLOYEE = "employee"  # may talk to the assistant
    KNOWLEDGE_ADMIN = "knowledge_admin"  # manages the documents the assistant answers from
    AUDITOR = "auditor"  # reviews conversations, read-only


ALL_ROLES: tuple[Role, ...] = tuple(Role)
