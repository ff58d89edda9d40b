"""Project settings, read from the environment.

Development defaults are safe to run locally. With ``ENGAGEMENT_ENV=production`` the process refuses to
start on an insecure setting (default secret key, DEBUG on, wildcard hosts, no public URL).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ENVIRONMENT = os.environ.get("ENGAGEMENT_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"
_DEV_SECRET = "dev-insecure-secret-key-change-me"  # noqa: S105 - refused in production below

SECRET_KEY = os.environ.get("SECRET_KEY", _DEV_SECRET)
DEBUG = _env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "*" if not PRODUCTION else "")
# The public origin the providers call back (status callbacks, signature URLs). No trailing slash.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

if PRODUCTION:
    problems = []
    if SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 32:
        problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
    if DEBUG:
        problems.append("DEBUG must be off")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must list the real host names")
    if not PUBLIC_BASE_URL.startswith("https://"):
        problems.append("PUBLIC_BASE_URL must be the https:// origin providers call")
    if not os.environ.get("DATABASE_URL"):
        problems.append("DATABASE_URL must be set")
    if not os.environ.get("REDIS_URL"):
        problems.append("REDIS_URL must be set")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "engagement",
    "customers",
    "channels_inbound",
    "channels_outbound",
    # Last: registers the listeners of domain events once every app is loaded.
    "config.apps.WiringConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "engagement.console.context_processors.workspace",
            ],
        },
    },
]

_db = dj_database_url.parse(
    os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/engagement"),
)
_db.setdefault("OPTIONS", {})
# psycopg 3 connection pool (Django's own pooling); CONN_MAX_AGE must be 0 with it.
if _env_bool("DATABASE_POOL", True):
    _db["OPTIONS"]["pool"] = {
        "min_size": int(os.environ.get("DATABASE_POOL_MIN", "1")),
        "max_size": int(os.environ.get("DATABASE_POOL_MAX", "10")),
        "timeout": 10,
    }
_db["CONN_MAX_AGE"] = 0
# Server-side parameter binding, and statements prepared on a connection after their 5th run: the hot
# paths run the same few statements over and over, and PostgreSQL spent more time planning them (a
# join: ~1.4 ms) than running them (~0.1 ms). Off with DATABASE_PREPARED=0 (e.g. behind a pooler in
# transaction mode, which cannot keep prepared statements).
if _env_bool("DATABASE_PREPARED", True):
    _db["OPTIONS"]["server_side_binding"] = True
    _db["OPTIONS"]["prepare_threshold"] = 5
DATABASES = {"default": _db}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "engagement",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # channels_redis blocks up to 5 s in BZPOPMIN per receive; redis-py's default 5 s socket timeout
        # would race it and kill the consumer ("Timeout reading from ..."), so reads may take longer.
        # A console or visitor socket whose queue is full silently loses group messages (channels_redis
        # default capacity: 100); a busy inbox can burst past that, so give each channel room.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": "engagement:asgi",
            "capacity": int(os.environ.get("CHANNEL_LAYER_CAPACITY", "2000")),
            "expiry": 60,
        },
    }
}

# Celery
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "requeue-stuck-outbound": {
        "task": "channels_outbound.tasks.requeue_stuck_outbound",
        "schedule": 60.0,
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:inbox"
LOGOUT_REDIRECT_URL = "console:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise wants it even before collectstatic
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
MEDIA_URL = "media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Webhook bodies larger than this are answered 413 before they are parsed.
WEBHOOK_MAX_BODY_BYTES = int(os.environ.get("WEBHOOK_MAX_BODY_BYTES", str(256 * 1024)))
# Inbound email (SendGrid Inbound Parse, raw MIME in one form field) may be as large as the mail itself.
EMAIL_INBOUND_MAX_BYTES = int(os.environ.get("EMAIL_INBOUND_MAX_BYTES", str(30 * 1024 * 1024)))
EMAIL_EVENTS_MAX_BYTES = int(os.environ.get("EMAIL_EVENTS_MAX_BYTES", str(1024 * 1024)))
# Django's cap on non-file form data; the webhook view enforces each hook's own, smaller, limit first.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(WEBHOOK_MAX_BODY_BYTES, EMAIL_INBOUND_MAX_BYTES)

# Outbound providers. When a channel has no credentials, the sandbox provider stands in.
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_PHONE_NUMBER = os.environ.get("TWILIO_PHONE_NUMBER", "")
# Where the twilio SDK sends REST calls; tests point it at a local fake Twilio server.
TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "https://api.twilio.com")
TWILIO_HTTP_TIMEOUT = float(os.environ.get("TWILIO_HTTP_TIMEOUT", "10"))
# The console's inbound-message simulator creates customers from thin air: demo and development only.
SIMULATOR_ENABLED = _env_bool("SIMULATOR_ENABLED", not PRODUCTION)
# Delay before the sandbox provider reports delivery, in seconds.
SANDBOX_DELIVERY_DELAY = float(os.environ.get("SANDBOX_DELIVERY_DELAY", "1.0"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "engagement.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["engagement.api.permissions.HasWorkspace"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "engagement.api.exceptions.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Engagement Platform API",
    "DESCRIPTION": "Customers, their unified timeline, and messages on every channel.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "twilio.http_client": {"level": "WARNING"}},
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL]

OUTBOUND_RETRY_BASE_SECONDS = float(os.environ.get("OUTBOUND_RETRY_BASE_SECONDS", "5"))
OUTBOUND_RETRY_MAX_SECONDS = float(os.environ.get("OUTBOUND_RETRY_MAX_SECONDS", "600"))

# Webchat widget (channels_inbound/webchat/). Rate limits are (count, window seconds), counted in Redis.
WEBCHAT_MAX_MESSAGE_CHARS = int(os.environ.get("WEBCHAT_MAX_MESSAGE_CHARS", "5000"))
# A websocket frame larger than this closes the socket (the message limit plus JSON overhead).
WEBCHAT_MAX_FRAME_CHARS = WEBCHAT_MAX_MESSAGE_CHARS * 6 + 4096
WEBCHAT_MAX_UPLOAD_BYTES = int(os.environ.get("WEBCHAT_MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))
WEBCHAT_HISTORY_LIMIT = int(os.environ.get("WEBCHAT_HISTORY_LIMIT", "100"))
WEBCHAT_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "visitor_messages": (int(os.environ.get("WEBCHAT_RATE_VISITOR_MESSAGES_PER_MINUTE", "30")), 60),
    "ip_messages": (int(os.environ.get("WEBCHAT_RATE_IP_MESSAGES_PER_MINUTE", "300")), 60),
    "ip_visitors": (int(os.environ.get("WEBCHAT_RATE_IP_NEW_VISITORS_PER_HOUR", "60")), 3600),
}
