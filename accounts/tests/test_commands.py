import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.roles import Role
from accounts.selectors import user_roles
from accounts.services import DEMO_USERS, user_roles_set

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_demo_users_command_creates_one_user_per_role_and_prints_them(capsys):
    call_command("koe_demo_users")
    out = capsys.readouterr().out
    for demo in DEMO_USERS:
        assert demo.username in out and demo.password in out
        user = User.objects.get(username=demo.username)
        assert user.check_password(demo.password)
        assert user_roles(user=user) == set(demo.roles)
    assert user_roles(user=User.objects.get(username="admin")) == set(Role)
    # Running it again resets rather than duplicates.
    call_command("koe_demo_users")
    assert User.objects.count() == len(DEMO_USERS)


def test_demo_users_refused_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="only in development"):
        call_command("koe_demo_users")
    assert not User.objects.exists()


def test_demo_users_skip_quietly_when_asked_and_not_allowed(settings, capsys):
    settings.KOE_LOCAL_ACCOUNTS = False
    call_command("koe_demo_users", "--if-enabled")
    assert "No demo users" in capsys.readouterr().out
    assert not User.objects.exists()


def test_grant_superuser_by_email_and_revoke(capsys):
    user = User.objects.create_user("taro", email="Taro@contoso.co.jp")
    user_roles_set(user=user, roles=[Role.EMPLOYEE])
    call_command("koe_grant_superuser", "taro@contoso.co.jp")
    user.refresh_from_db()
    assert user.is_superuser and user.is_staff
    assert "is now a superuser" in capsys.readouterr().out
    call_command("koe_grant_superuser", "taro", "--revoke")
    user.refresh_from_db()
    assert not user.is_superuser and not user.is_staff


def test_grant_superuser_needs_exactly_one_existing_user():
    with pytest.raises(CommandError, match="no user"):
        call_command("koe_grant_superuser", "ghost@contoso.co.jp")
    User.objects.create_user("a", email="same@contoso.co.jp")
    User.objects.create_user("b", email="same@contoso.co.jp")
    with pytest.raises(CommandError, match="2 users"):
        call_command("koe_grant_superuser", "same@contoso.co.jp")
