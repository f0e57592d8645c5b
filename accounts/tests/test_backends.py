"""Local username/password accounts: development only, or when explicitly enabled."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-local-password"


@pytest.fixture
def local_user():
    return get_user_model().objects.create_user("yuki", password=PASSWORD, is_staff=True)


def test_local_login_works_in_development(local_user):
    client = Client()
    response = client.post("/accounts/login/", {"login": "yuki", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(local_user.pk)


def test_no_password_opens_a_session_when_local_accounts_are_off(local_user, settings):
    # What KOE_ENV=production sets by default (see portal/tests/test_settings.py).
    settings.KOE_LOCAL_ACCOUNTS = False
    settings.SOCIALACCOUNT_ONLY = True
    client = Client()
    response = client.post("/accounts/login/", {"login": "yuki", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
    # Not through the admin's own form either: it is not served, and the backend refuses.
    response = client.post("/admin/login/", {"username": "yuki", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
    assert client.login(username="yuki", password=PASSWORD) is False
