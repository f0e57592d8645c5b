"""The sign-in page and the admin's sign-in."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.roles import Role
from accounts.services import user_roles_set

pytestmark = pytest.mark.django_db


def test_sign_in_page_offers_microsoft(fake_entra):
    page = Client().get("/accounts/login/")
    assert page.status_code == 200
    assert "Sign in with Microsoft" in page.content.decode()


def test_sign_in_page_without_entra_offers_only_the_local_form():
    body = Client().get("/accounts/login/").content.decode()
    assert "Sign in with" not in body
    assert 'name="password"' in body


def test_authorize_request_uses_pkce_and_openid_scope(fake_entra):
    start = Client().post("/accounts/oidc/entra/login/", {"process": "login"})
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert "openid" in query["scope"][0].split()
    assert query["client_id"] == [fake_entra.client_id]


@pytest.fixture
def entra_only(settings):
    settings.KOE_LOCAL_ACCOUNTS = False
    settings.SOCIALACCOUNT_ONLY = True


def test_admin_sends_anonymous_users_to_the_single_sign_in(entra_only):
    response = Client().get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/?next=/admin/"
    assert response.status_code == 200


def test_admin_tells_signed_in_non_staff_instead_of_looping(entra_only):
    user = get_user_model().objects.create_user("emi")
    user_roles_set(user=user, roles=[Role.EMPLOYEE])
    client = Client()
    client.force_login(user)
    response = client.get("/admin/", follow=True)
    assert len(response.redirect_chain) == 1
    assert response.status_code == 403
    assert "The administration is for knowledge admins" in response.content.decode()


def test_admin_serves_staff_signed_in_through_entra(entra_only):
    user = get_user_model().objects.create_user("kenji")
    user_roles_set(user=user, roles=[Role.KNOWLEDGE_ADMIN])
    client = Client()
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
