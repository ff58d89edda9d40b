"""Project settings, read from the environment.

Development defaults are safe to run locally. With ``ENGAGEMENT_ENV=production`` the process refuses to
start on an insecure setting (default secret key, DEBUG on, wildcard hosts, no public URL).
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Queue

from config.log_filters import CELERY_TASK_LOGGERS

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
# Fernet keys (comma-separated, urlsafe base64 of 32 bytes) encrypting provider credentials and webhook
# secrets in Channel.config at rest (engagement/credentials.py). The first key encrypts, every key
# decrypts: to rotate, put a new key first, run `manage.py credentials_rotate`, then drop the old one.
# Development derives one from SECRET_KEY; production must set it.
CREDENTIALS_KEYS = _env_list("CREDENTIALS_KEYS", "") or [
    base64.urlsafe_b64encode(hashlib.sha256(f"credentials:{SECRET_KEY}".encode()).digest()).decode()
]

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
    if not os.environ.get("CREDENTIALS_KEYS"):
        problems.append("CREDENTIALS_KEYS must be set (Fernet keys encrypting channel credentials)")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
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
    # /api/ paths without their trailing slash are served, unknown ones are 404 problems, in every mode.
    "engagement.api.middleware.ApiPathMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "engagement.middleware.InputBoundaryMiddleware",
    "engagement.api.ratelimit.RateLimitHeadersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy (Django's own, django.middleware.csp), in every mode so development sees what
# production enforces. Scripts and styles come from our origin or carry the request's nonce
# ({{ csp_nonce }} in templates; the webchat widget copies its tag's nonce onto its <style>). A view
# may replace it (the webchat file view serves a sandbox policy of its own).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

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
                "django.template.context_processors.csp",
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
        # How long a request waits for a connection (all in use, or PostgreSQL unreachable) before it
        # fails with a 5xx that the provider retries.
        "timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "10")),
    }
_db["CONN_MAX_AGE"] = 0
# A pooled connection is checked before use (one empty round trip), so after a PostgreSQL restart no
# request or task fails on a connection the server already closed.
_db["CONN_HEALTH_CHECKS"] = _env_bool("DATABASE_HEALTH_CHECKS", True)
# Server-side parameter binding, and statements prepared on a connection after their 5th run: the hot
# paths run the same few statements over and over, and PostgreSQL spent more time planning them (a
# join: ~1.4 ms) than running them (~0.1 ms). Off with DATABASE_PREPARED=0 (e.g. behind a pooler in
# transaction mode, which cannot keep prepared statements).
if _env_bool("DATABASE_PREPARED", True):
    _db["OPTIONS"]["server_side_binding"] = True
    _db["OPTIONS"]["prepare_threshold"] = 5
# PostgreSQL's JIT compiles a plan's expressions once the plan's cost passes jit_above_cost: on the
# audience counts (a segment with consent rules over 1,000,000 customers) compiling took about a second
# that the query never won back (bench_segments). Off for our connections; DATABASE_JIT=1 turns it on.
if not _env_bool("DATABASE_JIT", False):
    _db["OPTIONS"]["options"] = (str(_db["OPTIONS"].get("options", "")) + " -c jit=off").strip()
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

# Celery. The broker is Redis by default; ``CELERY_BROKER_URL`` names another (RabbitMQ:
# amqp://user:password@host:5672//, for installations that outgrow one Redis), tested beside Redis.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Two lanes: conversational work (agent replies, automated answers, webhooks…) on the default queue,
# campaign fan-out (the scheduler tick, campaign sends, email batches) on the bulk queue. A worker
# consumes every queue in CELERY_TASK_QUEUES unless told otherwise (-Q), polling them in turn, so a deep
# bulk queue never stands in front of a reply; production can also run a worker on the default queue
# alone (docker-compose's `worker` consumes both).
CELERY_BULK_QUEUE = os.environ.get("CELERY_BULK_QUEUE", "bulk")
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(CELERY_BULK_QUEUE))
CELERY_TASK_ROUTES = {
    "engagement.tasks.campaigns_tick": {"queue": CELERY_BULK_QUEUE},
    "channels_outbound.tasks.send_email_batch": {"queue": CELERY_BULK_QUEUE},
}
CELERY_TASK_IGNORE_RESULT = True
# Every task is idempotent (a send claims its interaction, automation replies carry idempotency keys,
# status events are deduplicated by provider event id, an import skips what is done), so each is
# acknowledged after it ran and handed back to the broker when its worker dies (SIGKILL, OOM): a task
# that is not idempotent must say acks_late=False.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = _env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
# The longest a task may run (the CSV import of a large file is the longest); the Redis broker's
# visibility timeout (after which an unacknowledged task is given to another worker) must exceed it, or
# a long task would run twice. RabbitMQ's consumer timeout (30 min by default) is raised the same way.
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "1800"))
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
# Publishing waits little for an unreachable broker: the outbox relay keeps the event and retries.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# How often recovery runs: expired send leases reconciled, queued sends whose task was lost re-queued.
OUTBOUND_RECOVER_INTERVAL_SECONDS = float(os.environ.get("OUTBOUND_RECOVER_INTERVAL_SECONDS", "30"))
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "requeue-stuck-outbound": {
        "task": "channels_outbound.tasks.requeue_stuck_outbound",
        "schedule": OUTBOUND_RECOVER_INTERVAL_SECONDS,
    },
    # Campaigns: start due runs, claim due recipients, sync outcomes, complete runs. Long waits live in
    # PostgreSQL (due times + indexes); a tick older than its interval is dropped, never piled up.
    "campaigns-tick": {
        "task": "engagement.tasks.campaigns_tick",
        "schedule": float(os.environ.get("CAMPAIGN_TICK_SECONDS", "1")),
        "options": {"expires": 5},
    },
    "journeys-tick": {
        "task": "engagement.journeys.tasks.journeys_tick",
        "schedule": float(os.environ.get("JOURNEYS_TICK_SECONDS", "1")),
        "options": {"expires": 5},
    },
    # Segment entered/left and date-attribute triggers (engagement/journeys/periodic.py).
    "journeys-evaluate": {
        "task": "engagement.journeys.tasks.journeys_evaluate",
        "schedule": float(os.environ.get("JOURNEYS_EVALUATE_SECONDS", "60")),
        "options": {"expires": 50},
    },
    "purge-idempotency-records": {
        "task": "engagement.tasks.idempotency_records_purge",
        "schedule": 3600.0,
    },
}

AUTHENTICATION_BACKENDS = [
    # django-axes first: a locked-out username + address is refused before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (console and Django admin): after AXES_FAILURE_LIMIT failures for one username from
# one address, that pair is locked out for AXES_COOLOFF_TIME (429 with templates/registration/
# locked_out.html). An admin unlocks early by deleting the attempt in the admin (Axes → Access
# attempts) or with `manage.py axes_reset_username <name>`. The client address is REMOTE_ADDR unless
# TRUSTED_PROXY_COUNT proxies sit in front (then X-Forwarded-For, counted from the right).
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_SENSITIVE_PARAMETERS = ["password"]
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
if TRUSTED_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# The transactional outbox (engagement/outbox.py). Production relays with ``manage.py outbox_relay``
# (woken by PostgreSQL NOTIFY at commit); unit tests relay in the committing process instead.
OUTBOX_RELAY_INLINE = _env_bool("OUTBOX_RELAY_INLINE", False)
OUTBOX_RELAY_POLL_SECONDS = float(os.environ.get("OUTBOX_RELAY_POLL_SECONDS", "5"))
OUTBOX_RETRY_MAX_SECONDS = float(os.environ.get("OUTBOX_RETRY_MAX_SECONDS", "30"))
OUTBOX_RETENTION_HOURS = float(os.environ.get("OUTBOX_RETENTION_HOURS", "24"))

# Outbound webhooks (engagement/webhooks/). Private and loopback targets are for local development and
# tests only; cloud metadata addresses are refused even then.
WEBHOOKS_ALLOW_PRIVATE_TARGETS = _env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", False)
# Delay after each failed attempt, in seconds (then the delivery fails): about three days in all.
WEBHOOKS_RETRY_SCHEDULE = [
    float(s)
    for s in _env_list("WEBHOOKS_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000,50400,50400,50400")
]
WEBHOOKS_RETRY_JITTER = float(os.environ.get("WEBHOOKS_RETRY_JITTER", "0.1"))  # each delay ±10 %
WEBHOOKS_POLL_SECONDS = float(os.environ.get("WEBHOOKS_POLL_SECONDS", "5"))
WEBHOOKS_RUN_BUDGET_SECONDS = float(os.environ.get("WEBHOOKS_RUN_BUDGET_SECONDS", "50"))
WEBHOOKS_LEASE_SECONDS = float(os.environ.get("WEBHOOKS_LEASE_SECONDS", "60"))
WEBHOOKS_BATCH_SIZE = int(os.environ.get("WEBHOOKS_BATCH_SIZE", "50"))
WEBHOOKS_CONCURRENCY = int(os.environ.get("WEBHOOKS_CONCURRENCY", "8"))
WEBHOOKS_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOKS_TIMEOUT_SECONDS", "10"))
WEBHOOKS_RESPONSE_MAX_BYTES = int(os.environ.get("WEBHOOKS_RESPONSE_MAX_BYTES", str(64 * 1024)))
# Sustained failure disables an endpoint: failing this long without a success, or this many deliveries
# in a row out of attempts.
WEBHOOKS_DISABLE_AFTER_SECONDS = float(os.environ.get("WEBHOOKS_DISABLE_AFTER_SECONDS", str(3 * 24 * 3600)))
WEBHOOKS_DISABLE_AFTER_FAILED_DELIVERIES = int(
    os.environ.get("WEBHOOKS_DISABLE_AFTER_FAILED_DELIVERIES", "5")
)
# SLA: clocks past due become breaches (one sla.breached each); engagement/services/sla.py.
SLA_DETECT_INTERVAL_SECONDS = float(os.environ.get("SLA_DETECT_INTERVAL_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["sla-breaches-detect"] = {
    "task": "engagement.tasks.sla_breaches_detect",
    "schedule": SLA_DETECT_INTERVAL_SECONDS,
    "options": {"expires": SLA_DETECT_INTERVAL_SECONDS},
}

# Snoozed conversations whose time has come are open again (the inbox also wakes them lazily).
CELERY_BEAT_SCHEDULE["wake-snoozed-conversations"] = {
    "task": "engagement.tasks.wake_snoozed",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["webhooks-deliver-due"] = {
    "task": "engagement.webhooks.tasks.webhooks_deliver_due",
    "schedule": WEBHOOKS_POLL_SECONDS,
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"  # by role: marketers to campaigns, others to the inbox
LOGOUT_REDIRECT_URL = "console:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Everything the platform writes locally lives under one git-ignored directory: the embedded PostgreSQL
# and Redis of `make run` / `make test` (tools/devenv.py), the npm files, collected static files, media
# and the end-to-end tests' logs. A relative ENGAGEMENT_VAR_DIR is taken from the repository root, as
# tools/devenv.py takes it.
VAR_DIR = BASE_DIR / os.environ.get("ENGAGEMENT_VAR_DIR", "var")
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# npm libraries (htmx, Chart.js) copied here by tools/frontend.py (`make run` / `make test`).
STATICFILES_DIRS = [VAR_DIR / "frontend"]
STATICFILES_DIRS[0].mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise wants it even before collectstatic
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Webhook bodies larger than this are answered 413 before they are parsed.
WEBHOOK_MAX_BODY_BYTES = int(os.environ.get("WEBHOOK_MAX_BODY_BYTES", str(256 * 1024)))
# Inbound email (SendGrid Inbound Parse, raw MIME in one form field) may be as large as the mail itself.
EMAIL_INBOUND_MAX_BYTES = int(os.environ.get("EMAIL_INBOUND_MAX_BYTES", str(30 * 1024 * 1024)))
EMAIL_EVENTS_MAX_BYTES = int(os.environ.get("EMAIL_EVENTS_MAX_BYTES", str(1024 * 1024)))
# Django's cap on non-file form data; the webhook view enforces each hook's own, smaller, limit first.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(WEBHOOK_MAX_BODY_BYTES, EMAIL_INBOUND_MAX_BYTES)
# At most this many automated answers (automation-rule replies) per customer per channel per hour,
# whatever the rules say: two auto-responders cannot loop (RFC 3834 section 2). A channel's config
# ``automated_answers_per_hour`` overrides it.
AUTOMATED_ANSWERS_PER_HOUR = int(os.environ.get("AUTOMATED_ANSWERS_PER_HOUR", "5"))

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
    "DEFAULT_PERMISSION_CLASSES": [
        "engagement.api.permissions.HasWorkspace",
        "engagement.api.permissions.HasScope",
        "engagement.api.permissions.KnownQueryParameters",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["engagement.api.ratelimit.KeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "engagement.api.renderers.ProblemJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "engagement.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "engagement.api.schema.ContractAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "engagement.api.pagination.ContractCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "engagement.api.exceptions.exception_handler",
    # No ?format= override: JSON (and problem+json) is the only representation; one fewer parameter.
    "URL_FORMAT_OVERRIDE": None,
}

# The API contract (ARCHITECTURE.md "API contract"): rate limits per key and on bad keys per address,
# Idempotency-Key retention, and the resource area of each URL segment an API key's scopes name.
API_RATE_LIMIT_REQUESTS = int(os.environ.get("API_RATE_LIMIT_REQUESTS", "600"))
API_RATE_LIMIT_WINDOW_SECONDS = int(os.environ.get("API_RATE_LIMIT_WINDOW_SECONDS", "60"))
API_AUTH_FAILURE_LIMIT = int(os.environ.get("API_AUTH_FAILURE_LIMIT", "50"))
API_AUTH_FAILURE_WINDOW_SECONDS = int(os.environ.get("API_AUTH_FAILURE_WINDOW_SECONDS", "300"))
API_IDEMPOTENCY_TTL_SECONDS = 24 * 3600
API_IDEMPOTENCY_WAIT_SECONDS = 5
API_SCOPE_PATH_AREAS = {
    "customer-imports": "imports",
    "customer-merges": "customers",
    "merge-suggestions": "customers",
    "customer-attributes": "customers",
    "interactions": "messages",
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
    # One name per choice set (check --deploy validates the schema and warns on collisions).
    "ENUM_NAME_OVERRIDES": {
        "PreferredChannelEnum": "customers.models.PreferredChannel",
        "IdentityKindEnum": "customers.models.IdentityKind",
        "InteractionKindEnum": "engagement.models.conversations.InteractionKind",
        "SegmentKindEnum": "engagement.models.segments.SegmentKind",
        "CampaignStateEnum": "engagement.models.campaigns.CampaignState",
        "CampaignRunStateEnum": "engagement.models.campaigns.RunState",
        "CampaignRecipientStateEnum": "engagement.models.campaigns.RecipientState",
        "WebhookDeliveryStateEnum": "engagement.models.webhooks.DeliveryState",
        "InteractionStatusEnum": "engagement.models.conversations.InteractionStatus",
        "ConversationStatusEnum": "engagement.models.conversations.ConversationStatus",
        "ConsentStatusEnum": "customers.models.ConsentStatus",
        "ImportStatusEnum": "customers.models.ImportStatus",
        "SuggestionStatusEnum": "customers.models.SuggestionStatus",
        "MessagePurposeEnum": [("transactional", "transactional"), ("marketing", "marketing")],
        "ConsentPurposeEnum": "customers.models.ConsentPurpose",
    },
    # OpenAPI 3.1 (the contract); every 4xx comes from engagement.api.schema.
    "OAS_VERSION": "3.1.0",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Periodic tasks beat sends more often than once a minute (the campaigns tick: every second) write
    # no INFO line per run, which would scroll `make run`'s banner away; their warnings and errors show.
    "filters": {"quiet_periodic_tasks": {"()": "config.log_filters.QuietFrequentTasks"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "twilio.http_client": {"level": "WARNING"},
        **{name: {"filters": ["quiet_periodic_tasks"]} for name in CELERY_TASK_LOGGERS},
    },
}

if PRODUCTION:
    # `manage.py check --deploy` is clean with these (tests/test_production_security.py).
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL]
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    # The load balancer's health probe may speak plain HTTP on the private network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", True)

OUTBOUND_RETRY_BASE_SECONDS = float(os.environ.get("OUTBOUND_RETRY_BASE_SECONDS", "5"))
OUTBOUND_RETRY_MAX_SECONDS = float(os.environ.get("OUTBOUND_RETRY_MAX_SECONDS", "600"))
# A claimed send belongs to its worker this long; it must outlast the longest provider call (the HTTP
# timeouts), so an expired lease means the worker is gone, and the send is reconciled with the provider.
OUTBOUND_SEND_LEASE_SECONDS = float(os.environ.get("OUTBOUND_SEND_LEASE_SECONDS", "90"))
if OUTBOUND_SEND_LEASE_SECONDS <= 2 * TWILIO_HTTP_TIMEOUT:
    raise ImproperlyConfigured("OUTBOUND_SEND_LEASE_SECONDS must exceed twice TWILIO_HTTP_TIMEOUT")
# A queued send whose task has not run this long is handed to a new task (its broker message was lost).
OUTBOUND_REQUEUE_AFTER_SECONDS = float(os.environ.get("OUTBOUND_REQUEUE_AFTER_SECONDS", "120"))
# Campaign email goes out in batches (SendGrid: up to 1,000 personalizations per Mail Send request). A
# batch is sent when full or when its oldest message has waited this long; one flush drains for at
# most the budget, then hands over to the next.
OUTBOUND_EMAIL_BATCH_WAIT_SECONDS = float(os.environ.get("OUTBOUND_EMAIL_BATCH_WAIT_SECONDS", "1"))
OUTBOUND_EMAIL_BATCH_BUDGET_SECONDS = float(os.environ.get("OUTBOUND_EMAIL_BATCH_BUDGET_SECONDS", "20"))

# Campaigns (engagement/campaigns/sending.py).
# Messages per second per sender (Twilio number/messaging service, SendGrid account) unless the channel's
# config says "rate_per_second".
CAMPAIGN_DEFAULT_RATE_PER_SECOND = float(os.environ.get("CAMPAIGN_DEFAULT_RATE_PER_SECOND", "50"))
# Paced provider calls are spaced at this share of a sender's rate (jitter between our call and the
# provider's count must not take a one-second window over the rate): engagement.services.guards.
PACING_SEND_HEADROOM = float(os.environ.get("PACING_SEND_HEADROOM", "0.96"))
# Recipients claimed per batch; the run's state (paused/cancelled) is re-read before every batch.
CAMPAIGN_BATCH_SIZE = int(os.environ.get("CAMPAIGN_BATCH_SIZE", "50"))
# Back-pressure: a run claims no more recipients while this many of its messages wait for a send task.
CAMPAIGN_MAX_QUEUED = int(os.environ.get("CAMPAIGN_MAX_QUEUED", "200"))
# Auto-pause: a run whose last CAMPAIGN_AUTOPAUSE_WINDOW provider attempts are at least this % failed.
CAMPAIGN_AUTOPAUSE_FAILED_PERCENT = float(os.environ.get("CAMPAIGN_AUTOPAUSE_FAILED_PERCENT", "20"))
CAMPAIGN_AUTOPAUSE_WINDOW = int(os.environ.get("CAMPAIGN_AUTOPAUSE_WINDOW", "50"))
# A run with an email channel may queue this many: enough to fill SendGrid batches of 1,000.
CAMPAIGN_EMAIL_MAX_QUEUED = int(os.environ.get("CAMPAIGN_EMAIL_MAX_QUEUED", "2000"))
# A claimed recipient whose worker died is claimable again after this.
CAMPAIGN_CLAIM_LEASE_SECONDS = float(os.environ.get("CAMPAIGN_CLAIM_LEASE_SECONDS", "60"))
# How long one tick works on one run before handing the worker back.
CAMPAIGN_TICK_BUDGET_SECONDS = float(os.environ.get("CAMPAIGN_TICK_BUDGET_SECONDS", "2"))
# A queued campaign message whose send task was lost (worker killed) is handed to a new task after this.
CAMPAIGN_REQUEUE_AFTER_SECONDS = float(os.environ.get("CAMPAIGN_REQUEUE_AFTER_SECONDS", "10"))
# A message left "sending" (the worker died around the provider call) with no provider answer or status
# callback after this is "unknown": never resent blindly (at most once on ambiguity).
CAMPAIGN_AMBIGUOUS_AFTER_SECONDS = float(os.environ.get("CAMPAIGN_AMBIGUOUS_AFTER_SECONDS", "300"))

# Journeys (engagement/journeys/). Due enrollments claimed per batch, their lease (a claimed row whose
# worker died is claimable again after it), how long one tick works before handing the worker back. A
# batch's timers fire set-based in one transaction; the rows it leaves at a send (or another step with
# effects) then go through the per-enrollment engine JOURNEYS_ADVANCE_CHUNK per transaction.
JOURNEYS_BATCH_SIZE = int(os.environ.get("JOURNEYS_BATCH_SIZE", "1000"))
JOURNEYS_ADVANCE_CHUNK = int(os.environ.get("JOURNEYS_ADVANCE_CHUNK", "100"))
# Enrollments an event made due that the relay's journeys listener advances itself (their first send
# queued in the same pass) instead of the journeys_advance task. 0 (default): all to the task — measured
# (bench/README.md, journeys): the send step in the single relay process made it the bottleneck at
# 10 keywords/s on the loaded machine (p50 5.5 s against 0.32 s through the task).
JOURNEYS_INLINE_ADVANCE = int(os.environ.get("JOURNEYS_INLINE_ADVANCE", "0"))
JOURNEYS_LEASE_SECONDS = float(os.environ.get("JOURNEYS_LEASE_SECONDS", "60"))
JOURNEYS_TICK_BUDGET_SECONDS = float(os.environ.get("JOURNEYS_TICK_BUDGET_SECONDS", "2"))
# After the due rows are drained, a tick may sleep until the next due time and fire it, for this long
# from its start (engagement/journeys/scheduler.py journeys_tick), so a timer fires when due rather than
# at the next beat (bench_journeys "steady": p99 0.01 to 0.06 s late instead of up to the interval). It
# holds one worker process mostly asleep, so it is off by default (0: one pass per beat, timers at most
# an interval late); set it to JOURNEYS_TICK_SECONDS on a deployment with a worker to spare for it.
JOURNEYS_TICK_FOLLOW_SECONDS = float(os.environ.get("JOURNEYS_TICK_FOLLOW_SECONDS", "0"))
# Tests only: a file holding seconds added to the journeys' clock (engagement/journeys/clock.py), so an
# end-to-end test can let "an hour" pass for its worker and beat. Empty in production.
JOURNEYS_CLOCK_FILE = os.environ.get("JOURNEYS_CLOCK_FILE", "")

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
