"""Reads of the audit app, always for an acting auditor."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from accounts.roles import Role
from accounts.selectors import user_has_role
from audit.models import AccessLogEntry
from voice.selectors import NotAnAuditor


def access_log_entries(*, auditor: AbstractBaseUser | AnonymousUser) -> QuerySet[AccessLogEntry]:
    """The access trail, newest first (auditors only)."""
    if not user_has_role(user=auditor, role=Role.AUDITOR):
        raise NotAnAuditor("the auditor role is required")
    return AccessLogEntry.objects.select_related("actor").order_by("-at", "-pk")
