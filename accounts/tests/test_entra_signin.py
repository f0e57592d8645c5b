"""Entra ID sign-in end to end, against a fake tenant that speaks OpenID Connect on 127.0.0.1."""

from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.roles import Role
from accounts.selectors import user_roles

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_sign_in_page_offers_microsoft(fake_entra):
    page = Client().get("/accounts/login/")
    assert page.status_code == 200
    assert "Sign in with Microsoft" in page.content.decode()


def test_authorize_request_uses_pkce_and_openid_scope(fake_entra):
    start = Client().post("/accounts/oidc/entra/login/", {"process": "login"})
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert "openid" in query["scope"][0].split()
    assert query["client_id"] == [fake_entra.client_id]


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
    assert "Welcome to Koe" in final.content.decode()
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


def test_missing_email_is_taken_from_preferred_username(entra_sign_in):
    entra_sign_in(
        Client(),
        oid="33333333-3333-3333-3333-333333333333",
        preferred_username="Ken.Sato@Contoso.co.jp",
        roles=["Koe.Employee"],
    )
    user = SocialAccount.objects.get(uid="33333333-3333-3333-3333-333333333333").user
    assert user.email == "ken.sato@contoso.co.jp"


def test_user_without_roles_is_told_to_ask_for_access(entra_sign_in):
    client = Client()
    final = entra_sign_in(
        client, oid="44444444-4444-4444-4444-444444444444", preferred_username="new@contoso.co.jp"
    )
    assert final.status_code == 403
    body = final.content.decode()
    assert "ask your administrator for access" in body
    assert "Traceback" not in body
    # Signed in all the same: the page knows who they are.
    assert "new@contoso.co.jp" in body


def test_token_from_another_tenant_is_refused(entra_sign_in, fake_entra, settings):
    """A code minted for someone else's client id must not sign anyone in here."""
    import requests

    fake_entra.sign_in_as(oid="5", preferred_username="x@evil.example", roles=["Koe.Employee"])
    client = Client()
    start = client.post("/accounts/oidc/entra/login/", {"process": "login"})
    tampered = start["Location"].replace(fake_entra.client_id, "someone-elses-client")
    at_entra = requests.get(tampered, allow_redirects=False, timeout=10)
    assert at_entra.status_code == 400
    assert not User.objects.exists()
