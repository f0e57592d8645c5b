"""Randomized access control: whatever the users, groups and documents, nobody ever receives a
passage of a document outside their groups, through any of the four ways in.

The ways in: the chunk_search selector, the search page, the passage view (and the file
download next to it) and the knowledge_search command.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.roles import Role
from accounts.services import user_roles_set
from knowledge.models import Document
from knowledge.selectors import chunk_search
from knowledge.services import document_create, document_ingest

GROUPS = ("finance", "hr", "legal", "sales")
QUERY = "quarterly policy memo"  # every document says it, so every visible one matches


@dataclass(frozen=True)
class UserSpec:
    roles: frozenset[Role]
    groups: frozenset[str]
    active: bool


users = st.lists(
    st.builds(
        UserSpec,
        roles=st.frozensets(st.sampled_from(list(Role))),
        groups=st.frozensets(st.sampled_from(GROUPS)),
        active=st.sampled_from([True, True, True, False]),  # mostly active
    ),
    min_size=1,
    max_size=4,
)
documents = st.lists(st.frozensets(st.sampled_from(GROUPS), max_size=2), min_size=1, max_size=6)


def may_read(user: UserSpec, allowed: frozenset[str]) -> bool:
    """The rule, written independently of the code under test."""
    if not user.active:
        return False
    if Role.KNOWLEDGE_ADMIN in user.roles:
        return True
    return Role.EMPLOYEE in user.roles and (not allowed or bool(allowed & user.groups))


def readers_role(user: UserSpec) -> bool:
    return user.active and bool({Role.EMPLOYEE, Role.KNOWLEDGE_ADMIN} & user.roles)


@override_settings(MEDIA_ROOT=tempfile.mkdtemp(prefix="koe-access-"))
class AccessControlTest(TestCase):
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(user_specs=users, document_groups=documents)
    def test_no_user_ever_receives_a_passage_outside_their_groups(
        self, user_specs: list[UserSpec], document_groups: list[frozenset[str]]
    ) -> None:
        groups = {name: Group.objects.create(name=name) for name in GROUPS}
        # (document, its allowed groups, a word only its text contains)
        docs: list[tuple[Document, frozenset[str], str]] = []
        for i, allowed in enumerate(document_groups):
            document = document_create(
                uploaded_by=None,
                filename=f"memo-{i}.md",
                data=f"# Memo {i}\n\nQuarterly policy memo number {i} (ref zq{i}x).".encode(),
                groups=[groups[g] for g in allowed],
                enqueue=False,
            )
            document = document_ingest(document_id=document.pk)
            assert document.status == Document.Status.READY
            docs.append((document, allowed, f"zq{i}x"))

        for n, spec in enumerate(user_specs):
            user = get_user_model().objects.create_user(f"user{n}", is_active=spec.active)
            user_roles_set(user=user, roles=spec.roles)
            user.groups.add(*[groups[g] for g in spec.groups])
            expected = {str(d.public_id) for d, allowed, _ in docs if may_read(spec, allowed)}

            # 1. The selector: exactly the readable documents (all of them: k exceeds them).
            hits = chunk_search(user=user, query=QUERY, k=50)
            assert {h.document_id for h in hits} == expected, spec

            client = Client()
            client.force_login(user)  # an inactive user stays anonymous all the same
            # 2. The search page.
            page = client.get(reverse("knowledge:search"), {"q": QUERY})
            if spec.active:
                assert page.status_code == (200 if readers_role(spec) else 403)
            body = page.content.decode()
            for document, _, marker in docs:
                assert (marker in body) == (str(document.public_id) in expected), spec

                # 3. The passage view and the file beside it.
                passage = client.get(reverse("knowledge:passage", args=[document.public_id, 0]))
                download = client.get(reverse("knowledge:file", args=[document.public_id]))
                if str(document.public_id) in expected:
                    assert passage.status_code == 200 and marker in passage.content.decode()
                    assert download.status_code == 200
                else:
                    assert passage.status_code in (302, 403, 404), spec
                    assert marker not in passage.content.decode()
                    assert download.status_code in (302, 404), spec

            # 4. The command line.
            out = io.StringIO()
            call_command("knowledge_search", "--user", user.username, "-k", "50", QUERY, stdout=out)
            printed = out.getvalue()
            for document, _, marker in docs:
                assert (marker in printed) == (str(document.public_id) in expected), spec
