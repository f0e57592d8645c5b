"""Entra sign-in end to end (fake tenant on 127.0.0.1): roles follow the id_token every time."""

import time

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.roles import Role
from accounts.selectors import user_roles

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_first_sign_in_creates_user_with_mapped_roles(entra_sign_in, fake_entra):
    client = Client()
    final = entra_sign_in(
        client,
        oid="11111111-1111-1111-1111-111111111111",
        preferred_username="taro.yamada@contoso.co.jp",
        email="taro.yamada@contoso.co.jp",
        roles=["Koe.Employee", "Koe.Auditor", "SomeOtherApp.Role"],
        name="山田 太郎",
    )
    assert final.status_code == 200
    assert "Your roles:" in final.content.decode()
    account = SocialAccount.objects.get(provider="entra")
    assert account.uid == "11111111-1111-1111-1111-111111111111"
    assert user_roles(user=account.user) == {Role.EMPLOYEE, Role.AUDITOR}
    assert account.user.is_staff is False
    # The token exchange proved the client with its secret and the PKCE verifier.
    (token_request,) = fake_entra.token_requests
    assert token_request["client_secret"] == fake_entra.client_secret
    assert token_request["code_verifier"]


def test_role_removed_in_entra_is_removed_on_next_sign_in(entra_sign_in):
    oid = "22222222-2222-2222-2222-222222222222"
    upn = "hanako@contoso.co.jp"
    entra_sign_in(
        Client(), oid=oid, preferred_username=upn, roles=["Koe.KnowledgeAdmin", "Koe.Employee"]
    )
    user = SocialAccount.objects.get(uid=oid).user
    assert user_roles(user=user) == {Role.KNOWLEDGE_ADMIN, Role.EMPLOYEE}
    assert user.is_staff is True

    entra_sign_in(Client(), oid=oid, preferred_username=upn, roles=["Koe.Employee"])
    user.refresh_from_db()
    assert user_roles(user=user) == {Role.EMPLOYEE}
    assert user.is_staff is False
    assert User.objects.count() == 1


def test_user_without_roles_is_told_to_ask_for_access(entra_sign_in):
    final = entra_sign_in(
        Client(), oid="44444444-4444-4444-4444-444444444444", preferred_username="new@contoso.co.jp"
    )
    assert final.status_code == 403
    body = final.content.decode()
    assert "ask your administrator for access" in body
    assert "Traceback" not in body
    # Signed in all the same: the page knows who they are.
    assert "new@contoso.co.jp" in body


@pytest.mark.parametrize(
    "override",
    [
        pytest.param({"iss": "https://login.microsoftonline.com/other-tenant/v2.0"}, id="issuer"),
        pytest.param({"aud": "someone-elses-client-id"}, id="audience"),
        pytest.param({"exp": int(time.time()) - 600}, id="expired"),
    ],
)
def test_id_token_not_meant_for_koe_signs_nobody_in(entra_sign_in, fake_entra, override):
    fake_entra.id_token_overrides = override
    client = Client()
    final = entra_sign_in(
        client,
        oid="55555555-5555-5555-5555-555555555555",
        preferred_username="mallory@other.example",
        roles=["Koe.Employee", "Koe.Auditor"],
    )
    assert "_auth_user_id" not in client.session
    assert "Your roles:" not in final.content.decode()
    assert not User.objects.exists()
    assert not SocialAccount.objects.exists()
