"""Production refuses to start half-configured and passes Django's deployment checklist."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "KOE_ENV": "production",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-" + "y" * 20,
    "ALLOWED_HOSTS": "koe.contoso.co.jp",
    "ENTRA_TENANT_ID": "00000000-0000-0000-0000-000000000001",
    "ENTRA_CLIENT_ID": "00000000-0000-0000-0000-000000000002",
    "ENTRA_CLIENT_SECRET": "not-a-real-secret",
}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KOE_", "ENTRA_"))}
    clean.pop("SECRET_KEY", None)
    clean.pop("ALLOWED_HOSTS", None)
    clean.pop("DATABASE_URL", None)
    clean.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_value(env: dict[str, str], expr: str) -> str:
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        f"print(repr(({expr})))"
    )
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_check_deploy_is_clean_in_production():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues (0 silenced)" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when KOE_ENV=production" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "ALLOWED_HOSTS"}
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = run(["manage.py", "check"], {**PRODUCTION_ENV, "SECRET_KEY": "changeme" * 3})
    assert result.returncode != 0
    assert "SECRET_KEY is too weak for production" in result.stderr


def test_production_refuses_debug():
    result = run(["manage.py", "check"], {**PRODUCTION_ENV, "DEBUG": "true"})
    assert result.returncode != 0
    assert "DEBUG must be off when KOE_ENV=production" in result.stderr


def test_a_role_map_naming_no_koe_role_stops_start_up():
    env = {"ENTRA_ROLE_MAP": '{"Koe.Admin": "administrator"}'}
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "ENTRA_ROLE_MAP names unknown Koe roles ['administrator']" in result.stderr


def test_production_health_probe_is_not_redirected_to_https(production_on_test_db):
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "c = Client(HTTP_HOST='koe.contoso.co.jp');"
        "print(c.get('/healthz').status_code, c.get('/accounts/login/').status_code)"
    )
    result = run(["-c", code], production_on_test_db)
    assert result.returncode == 0, result.stderr
    # The probe answers over plain HTTP; every other page is redirected to https.
    assert result.stdout.split() == ["200", "301"]


def test_production_without_any_sign_in_method_refuses_to_start():
    env = {k: v for k, v in PRODUCTION_ENV.items() if not k.startswith("ENTRA_")}
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "Nobody could sign in" in result.stderr


def test_production_turns_local_accounts_off_and_cookies_secure():
    expr = "s.SOCIALACCOUNT_ONLY, s.KOE_LOCAL_ACCOUNTS, s.SESSION_COOKIE_SECURE, s.DEBUG"
    assert settings_value(PRODUCTION_ENV, expr) == "(True, False, True, False)"
    enabled = {**PRODUCTION_ENV, "KOE_LOCAL_ACCOUNTS": "true"}
    assert settings_value(enabled, "s.SOCIALACCOUNT_ONLY") == "False"


@pytest.fixture
def production_on_test_db(db) -> dict[str, str]:
    """Production settings on the migrated test database (never the developer's own)."""
    return {**PRODUCTION_ENV, "KOE_DB_NAME": connection.settings_dict["NAME"]}


def test_production_sends_a_content_security_policy(tmp_path, production_on_test_db):
    # Production serves hashed static files, so collectstatic runs first, as in a deployment.
    env = {**production_on_test_db, "STATIC_ROOT": str(tmp_path)}
    collected = run(["manage.py", "collectstatic", "--noinput"], env)
    assert collected.returncode == 0, collected.stderr
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='koe.contoso.co.jp').get('/accounts/login/', secure=True);"
        "print(r.status_code); print(r.headers['Content-Security-Policy']);"
        "print(r.headers['Strict-Transport-Security'])"
    )
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    status, csp, hsts = result.stdout.strip().splitlines()
    assert status == "200"
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    # The sign-in form's redirect goes on to Entra, which form-action must allow.
    assert "form-action 'self' https://login.microsoftonline.com" in csp
    assert "max-age=31536000" in hsts


def test_unknown_environment_name_is_refused():
    result = run(["manage.py", "check"], {"KOE_ENV": "staging"})
    assert result.returncode != 0
    assert "KOE_ENV must be 'development' or 'production'" in result.stderr


def test_redis_url_switches_channel_layer_and_cache():
    env = {"REDIS_URL": "redis://127.0.0.1:6390/0"}
    expr = "s.CHANNEL_LAYERS['default']['BACKEND'], s.CACHES['default']['BACKEND']"
    assert settings_value(env, expr) == (
        "('channels_redis.core.RedisChannelLayer', 'django.core.cache.backends.redis.RedisCache')"
    )
    assert "InMemoryChannelLayer" in settings_value({}, "s.CHANNEL_LAYERS['default']['BACKEND']")


def test_database_url_replaces_the_embedded_server():
    env = {"DATABASE_URL": "postgres://koe:pw@db.internal:5433/koe_prod"}
    db = "s.DATABASES['default']"
    expr = f"{db}['ENGINE'], {db}['HOST'], {db}['TEST']['NAME']"
    assert settings_value(env, expr) == (
        "('django.db.backends.postgresql', 'db.internal', 'test_koe_prod')"
    )
    assert settings_value({}, "s.DATABASES['default']['ENGINE']") == "'portal.embedded_postgres'"
