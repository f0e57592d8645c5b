"""Local username/password accounts: development only, or when explicitly enabled."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.roles import Role
from accounts.selectors import user_roles
from accounts.services import DEMO_USERS

pytestmark = pytest.mark.django_db


@pytest.fixture
def local_user():
    return get_user_model().objects.create_user("yuki", password="a-long-local-password")


def test_local_login_works_in_development(local_user):
    client = Client()
    response = client.post(
        "/accounts/login/", {"login": "yuki", "password": "a-long-local-password"}
    )
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(local_user.pk)


def test_local_login_refused_when_local_accounts_are_off(local_user, settings):
    # What KOE_ENV=production sets by default (see portal/tests/test_settings.py).
    settings.KOE_LOCAL_ACCOUNTS = False
    settings.SOCIALACCOUNT_ONLY = True
    client = Client()
    response = client.post(
        "/accounts/login/", {"login": "yuki", "password": "a-long-local-password"}
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
    # Not through the admin's own form either: the backend refuses every password.
    response = client.post(
        "/admin/login/", {"username": "yuki", "password": "a-long-local-password"}
    )
    assert "_auth_user_id" not in client.session
    assert client.login(username="yuki", password="a-long-local-password") is False


def test_nobody_can_sign_up_locally():
    response = Client().post(
        "/accounts/signup/",
        {
            "username": "mallory",
            "password1": "x-Very-long-pass-1",
            "password2": "x-Very-long-pass-1",
        },
    )
    assert response.status_code in (200, 302, 403)
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_demo_users_command_creates_one_user_per_role_and_prints_them(capsys):
    call_command("koe_demo_users")
    out = capsys.readouterr().out
    for demo in DEMO_USERS:
        assert demo.username in out and demo.password in out
        user = get_user_model().objects.get(username=demo.username)
        assert user.check_password(demo.password)
        assert user_roles(user=user) == set(demo.roles)
    assert user_roles(user=get_user_model().objects.get(username="admin")) == set(Role)
    # Running it again resets rather than duplicates.
    call_command("koe_demo_users")
    assert get_user_model().objects.count() == len(DEMO_USERS)


def test_demo_users_refused_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="only in development"):
        call_command("koe_demo_users")
    assert not get_user_model().objects.exists()
