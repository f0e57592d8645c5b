import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.roles import Role
from accounts.services import user_roles_set

pytestmark = pytest.mark.django_db


def make_user(username: str, *roles: Role, staff: bool = False):
    user = get_user_model().objects.create_user(username, password="pw-not-used-here-123")
    user_roles_set(user=user, roles=roles)
    if staff:
        user.is_staff = True
        user.save()
    return user


def test_home_requires_sign_in():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


def test_home_greets_an_employee_with_the_voice_page(settings):
    client = Client()
    client.force_login(make_user("emi", Role.EMPLOYEE))
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="voice"' in page and 'data-socket="/ws/voice/"' in page
    assert '<script type="module" src="/static/voice/app.js">' in page
    assert '<script id="voice-labels" type="application/json">' in page  # data, not code
    # Nothing of the server's model policy or keys reaches the browser.
    from voice.realtime.policy import DEFAULT_INSTRUCTIONS

    assert DEFAULT_INSTRUCTIONS[:40] not in page
    assert settings.KOE_LOCAL_REALTIME_KEY not in page
    assert "search_knowledge" not in page


def test_home_without_the_employee_role_has_no_voice_page():
    client = Client()
    client.force_login(make_user("aiko", Role.AUDITOR))
    page = client.get("/").content.decode()
    assert "Welcome to Koe" in page and 'id="voice"' not in page
    assert "/static/voice/app.js" not in page


def test_signed_in_user_without_a_role_gets_the_access_page():
    client = Client()
    client.force_login(make_user("nobody"))
    response = client.get("/")
    assert response.status_code == 403
    assert "ask your administrator for access" in response.content.decode()


def test_admin_is_reachable_only_by_staff():
    anonymous = Client().get("/admin/")
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]

    employee = Client()
    employee.force_login(make_user("emi", Role.EMPLOYEE))
    response = employee.get("/admin/")
    assert response.status_code == 302 and "login" in response["Location"]

    admin = Client()
    admin.force_login(make_user("kenji", Role.KNOWLEDGE_ADMIN))  # knowledge admins are staff
    assert admin.get("/admin/").status_code == 200


def test_pages_carry_a_content_security_policy():
    response = Client().get("/accounts/login/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "connect-src 'self'" in csp


def test_healthz_is_public_and_checks_the_database():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True}
