"""Uptake settings: one module, every difference between environments is an environment variable.

See README.md ("Environment variables") for the list and the production values `check --deploy` wants.
"""

from datetime import timedelta
from pathlib import Path

import environ
import plotly
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent
# Private runtime state (embedded PostgreSQL, filesystem broker, beat schedule); git-ignored.
STATE_DIR = BASE_DIR / ".uptake"

env = environ.Env()

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="uptake-dev-only-insecure-secret-key-change-me-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Index expressions with operator classes (the account search's trigram indexes) and pg_trgm lookups.
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "core",
    "accounts",
    "catalog",
    "entitlements",
    "usage",
    "analytics",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Control characters in the path / NUL in the query → 400; customer ids in paths read exactly.
    "config.http.RequestTextMiddleware",
    # Django's session, auth and messages middleware, passed over on /api/v1/ (Bearer keys, no cookies).
    "config.api.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Django's own CSRF middleware on every path (`check --deploy` looks for it by this name, security.W003);
    # on /api/v1/ it reads no cookie and lets the csrf_exempt API views through, ~1 µs a request.
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.api.AuthenticationMiddleware",
    "config.api.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.api.CSPMiddleware",
    # A page whose view cannot reach PostgreSQL answers 503 with Retry-After (config/outage.py; not the API).
    "config.outage.DatabaseUnavailableMiddleware",
    # Last: turns a locked-out login into the lockout page (core.views.login_locked_out).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# ---------------------------------------------------------------------------
# Database: PostgreSQL only. Without DATABASE_URL, the embedded server that `make run` / `make test` start.
# ---------------------------------------------------------------------------
EMBEDDED_PG_PORT = env.int("UPTAKE_PG_PORT", default=54329)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"postgres://postgres@127.0.0.1:{EMBEDDED_PG_PORT}/uptake"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# A reused connection is checked at the start of every request that uses the database (config.db: a poll of
# its socket, no round trip); off, a connection broken since the last request answers one 503 and is replaced.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
DATABASES["default"].setdefault("OPTIONS", {})
# psycopg prepares a statement after this many runs on a connection. Only the hot paths' server-side-binding
# cursors (ingestion, entitlement check) are affected: Django's ORM binds client-side and never prepares.
# Empty turns it off (Django's default), e.g. behind a transaction-mode pooler without prepared statements.
_PREPARE_THRESHOLD = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", int(_PREPARE_THRESHOLD) if _PREPARE_THRESHOLD else None)
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError("Uptake runs on PostgreSQL only: DATABASE_URL must be a postgres:// URL")
# Django's PostgreSQL backend, with a health check that polls the socket instead of running SELECT 1.
DATABASES["default"]["ENGINE"] = "config.db"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------
# Redis, cache, Celery
# ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Redis is never on the critical path (core/redis_breaker.py): every call times out after this long, and after
# a failure the cache, the rate limiter and task publishing skip Redis for UPTAKE_REDIS_BREAKER_SECONDS.
UPTAKE_REDIS_TIMEOUT_SECONDS = env.float("UPTAKE_REDIS_TIMEOUT_SECONDS", default=0.5)
UPTAKE_REDIS_BREAKER_SECONDS = env.float("UPTAKE_REDIS_BREAKER_SECONDS", default=5.0)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "core.redis_breaker.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": UPTAKE_REDIS_TIMEOUT_SECONDS,
                "socket_timeout": UPTAKE_REDIS_TIMEOUT_SECONDS,
                # No retries inside redis-py: the breaker decides when to try again.
                "retry": Retry(NoBackoff(), 0),
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # Publishing fails after one short attempt (kombu would otherwise retry a connection for seconds); the worker
    # keeps reconnecting on its own (broker_connection_retry).
    CELERY_BROKER_CONNECTION_TIMEOUT = UPTAKE_REDIS_TIMEOUT_SECONDS
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "max_retries": 0,
        "socket_connect_timeout": UPTAKE_REDIS_TIMEOUT_SECONDS,
        "socket_timeout": UPTAKE_REDIS_TIMEOUT_SECONDS,
    }
else:
    # No Redis: an in-process cache, and Celery's filesystem transport in .uptake/broker, so the worker and
    # beat still run scheduled and background work on a single machine.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _BROKER_DIR = Path(env.str("UPTAKE_BROKER_DIR", default=str(STATE_DIR / "broker")))
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    # kombu's filesystem transport needs its folders to exist in every process that publishes or consumes
    # (web, worker, beat, tests): create them here, where they are defined.
    for _folder in ("queue", "processed", "control"):
        (_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)

CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(STATE_DIR / "celerybeat-schedule"))
CELERY_BEAT_SCHEDULE: dict = {
    # Analytics: recompute the (workspace, UTC day) buckets that new events touched.
    "analytics-rollup-pending": {"task": "analytics.rollup_pending", "schedule": 60.0},
    # Alerts: send rate-limit summaries whose window opened; re-queue deliveries whose task was lost.
    "alerts-sweep": {"task": "alerts.sweep", "schedule": 60.0},
    # Alerts: dormant and usage-drop pipelines from the rollups (one alert per account per window, so reruns
    # send nothing twice).
    "alerts-rollup-triggers": {"task": "alerts.evaluate_rollup_triggers", "schedule": 900.0},
    # Allowances: rebuild the counters of features whose metering changed and whose rebuild task was lost.
    "allowances-sync": {"task": "usage.allowance_counters_sync", "schedule": 60.0},
    # Allowances: recount every metered counter from the raw events and log any difference.
    "allowances-verify": {
        "task": "usage.allowance_counters_verify",
        "schedule": env.float("UPTAKE_ALLOWANCE_VERIFY_SECONDS", default=3600.0),
    },
    # Ingestion problems: keep the table bounded (age and rows per workspace).
    "usage-ingestion-problems-prune": {"task": "usage.ingestion_problems_prune", "schedule": 3600.0},
}

# ---------------------------------------------------------------------------
# Auth, i18n, time
# ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# Login throttling (django-axes): a username + client address pair is locked after LOGIN_FAILURE_LIMIT failed
# logins in a row, for LOGIN_COOLOFF_MINUTES; the login page explains it. Unlock: `manage.py axes_reset_username
# USER` (or `axes_reset_ip_username IP USER`, `axes_reset` for everyone). Attempts are kept in PostgreSQL.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("UPTAKE_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("UPTAKE_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "core.views.login_locked_out"
AXES_USERNAME_CALLABLE = "core.views.login_username"
AXES_VERBOSE = False
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------------------
# Static files: everything served from our own files (no CDN), through WhiteNoise.
# ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# plotly.js comes from the locked `plotly` package: {% static 'plotly/plotly.min.js' %}.
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", Path(plotly.__file__).parent / "package_data")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str("STATICFILES_STORAGE", default="django.contrib.staticfiles.storage.StaticFilesStorage")
    },
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# ---------------------------------------------------------------------------
# Security (production values come from the environment; see README)
# ---------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Content-Security-Policy (django-csp) on every page: scripts only from our own static files (no inline
# scripts or handlers: charts read their figures from JSON data blocks), no eval. Styles allow inline: plotly
# adds <style> rules at run time (without them its charts break; a style cannot run code). The Redoc page
# relaxes it (config/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None

# ---------------------------------------------------------------------------
# REST API
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["config.jsonio.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.jsonio.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.jsonio.ContentNegotiation",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Every API view: per-key buckets for writes, reads and the entitlement check (core/ratelimit.py).
    "DEFAULT_THROTTLE_CLASSES": ["core.ratelimit.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "config.schema.UptakeAutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Uptake API",
    "DESCRIPTION": "Usage ingestion, entitlements and adoption analytics. Authenticate with "
    "`Authorization: Bearer <api key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The Segment-compatible tracking API authenticates as Segment's clients do (usage/segment_api.py).
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "SegmentWriteKey": {
                "type": "http",
                "scheme": "basic",
                "description": "An API key with the `ingest` scope as the user name and an empty password (what "
                "Segment's and RudderStack's clients send as their write key), or `writeKey` in the body.",
            }
        }
    },
    "COMPONENT_SPLIT_REQUEST": True,
    # Account and end-user ids are free text: one path segment, percent-encoded (`org/1` → `org%2F1`).
    "PATH_CONVERTER_OVERRIDES": {
        "external_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "Free text without control characters; percent-encode it whole (`org/1` → `org%2F1`).",
        }
    },
    # Operation ids read `features_list`, `features_retrieve`, `features_activate` (no `v1_` in front).
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # One named enum per choice set, wherever it appears (drf-spectacular would otherwise invent names like
    # `StatusC6aEnum` for sets that share a field name).
    "ENUM_NAME_OVERRIDES": {
        "LifecycleEnum": "catalog.models.Lifecycle",
        "FeatureTypeEnum": "catalog.models.Feature.Type",
        "ResetPeriodEnum": "catalog.models.Feature.ResetPeriod",
        "ResetAnchorEnum": "catalog.models.Feature.ResetAnchor",
        "ItemTypeEnum": "catalog.models.Item.Type",
        "AccountStatusEnum": "accounts.models.Account.Status",
        "SubscriptionStatusEnum": "entitlements.models.Subscription.Status",
        "TriggerTypeEnum": "alerts.models.AlertPipeline.TriggerType",
        "ChannelTypeEnum": "alerts.models.AlertChannel.Type",
        "DeliveryStatusEnum": "alerts.models.AlertDelivery.Status",
        "DeliveryKindEnum": "alerts.models.AlertDelivery.Kind",
    },
}
# The entitlement check and POST /api/v1/events serve their common case below DRF (config.api fast paths);
# false sends every request through their DRF views (same answers, byte for byte; slower).
UPTAKE_FAST_PATHS = env.bool("UPTAKE_FAST_PATHS", default=True)

# ---------------------------------------------------------------------------
# Uptake: ingestion limits and defaults
# ---------------------------------------------------------------------------
UPTAKE_INGEST_MAX_EVENTS = env.int("UPTAKE_INGEST_MAX_EVENTS", default=1000)
UPTAKE_INGEST_MAX_BYTES = env.int("UPTAKE_INGEST_MAX_BYTES", default=1024 * 1024)
UPTAKE_INGEST_MAX_PROPERTIES_BYTES = env.int("UPTAKE_INGEST_MAX_PROPERTIES_BYTES", default=8 * 1024)
UPTAKE_INGEST_MAX_FUTURE_SECONDS = env.int("UPTAKE_INGEST_MAX_FUTURE_SECONDS", default=300)
# Group commit (usage/coalesce.py): small requests of a workspace arriving while another is being written are
# written together, one transaction for several requests. Requests over the size write alone.
UPTAKE_INGEST_COALESCE = env.bool("UPTAKE_INGEST_COALESCE", default=True)
UPTAKE_INGEST_COALESCE_MAX_EVENTS = env.int("UPTAKE_INGEST_COALESCE_MAX_EVENTS", default=20)
# Rows per (workspace, UTC day) dirty mark: each database connection bumps row pg_backend_pid() % N, so
# concurrent ingestion transactions of one workspace do not queue on a single row lock until COMMIT.
UPTAKE_DIRTY_SHARDS = env.int("UPTAKE_DIRTY_SHARDS", default=16)
if not 1 <= UPTAKE_DIRTY_SHARDS <= 1024:
    raise ImproperlyConfigured("UPTAKE_DIRTY_SHARDS must be between 1 and 1024.")
# Per-API-key rate limits (core/ratelimit.py): token buckets of BURST requests refilled at PER_SECOND, one per
# key for writes (every POST/PUT/PATCH/DELETE), one for reads (GETs) and one for the entitlement check, whose
# budget is above the rate the check is built for (≥ 1,500/s from one key: bench/RESULTS.md).
UPTAKE_RATE_LIMIT_ENABLED = env.bool("UPTAKE_RATE_LIMIT_ENABLED", default=True)
UPTAKE_RATE_BURST = env.int("UPTAKE_RATE_BURST", default=200)
UPTAKE_RATE_PER_SECOND = env.float("UPTAKE_RATE_PER_SECOND", default=100.0)
UPTAKE_RATE_READ_BURST = env.int("UPTAKE_RATE_READ_BURST", default=100)
UPTAKE_RATE_READ_PER_SECOND = env.float("UPTAKE_RATE_READ_PER_SECOND", default=50.0)
UPTAKE_RATE_CHECK_BURST = env.int("UPTAKE_RATE_CHECK_BURST", default=4000)
UPTAKE_RATE_CHECK_PER_SECOND = env.float("UPTAKE_RATE_CHECK_PER_SECOND", default=2500.0)
UPTAKE_RETRY_AFTER_SECONDS = env.int("UPTAKE_RETRY_AFTER_SECONDS", default=5)
# API keys (with their workspace) are cached in each web process for this long: a key revoked or a workspace
# changed in another process is seen within this delay (0 turns the cache off).
UPTAKE_API_KEY_CACHE_SECONDS = env.float("UPTAKE_API_KEY_CACHE_SECONDS", default=5.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(UPTAKE_INGEST_MAX_BYTES + 1024, 2_621_440)
# Segment-compatible tracking API (/api/segment/v1/...): Segment's own limits, after gzip decoding.
UPTAKE_SEGMENT_MAX_BATCH_BYTES = env.int("UPTAKE_SEGMENT_MAX_BATCH_BYTES", default=500 * 1024)
UPTAKE_SEGMENT_MAX_MESSAGE_BYTES = env.int("UPTAKE_SEGMENT_MAX_MESSAGE_BYTES", default=32 * 1024)
# Ingestion problems (messages answered 200 that could not be stored) are kept this long, and at most this many
# per workspace (the newest); a periodic task prunes the rest.
UPTAKE_INGESTION_PROBLEMS_RETENTION_DAYS = env.int("UPTAKE_INGESTION_PROBLEMS_RETENTION_DAYS", default=30)
UPTAKE_INGESTION_PROBLEMS_MAX_ROWS = env.int("UPTAKE_INGESTION_PROBLEMS_MAX_ROWS", default=10_000)

# ---------------------------------------------------------------------------
# Uptake: alert delivery (alerts/)
# ---------------------------------------------------------------------------
UPTAKE_ALERT_MAX_ATTEMPTS = env.int("UPTAKE_ALERT_MAX_ATTEMPTS", default=6)
# Ingested events whose alert evaluation task has not run after this long are evaluated by the alerts sweep.
UPTAKE_ALERT_PENDING_GRACE_SECONDS = env.int("UPTAKE_ALERT_PENDING_GRACE_SECONDS", default=60)
UPTAKE_ALERT_BACKOFF_BASE_SECONDS = env.float("UPTAKE_ALERT_BACKOFF_BASE_SECONDS", default=10.0)
UPTAKE_ALERT_BACKOFF_MAX_SECONDS = env.float("UPTAKE_ALERT_BACKOFF_MAX_SECONDS", default=900.0)
UPTAKE_ALERT_HTTP_TIMEOUT_SECONDS = env.float("UPTAKE_ALERT_HTTP_TIMEOUT_SECONDS", default=5.0)
UPTAKE_ALERT_RATE_WINDOW_SECONDS = env.int("UPTAKE_ALERT_RATE_WINDOW_SECONDS", default=60)
# Telegram channels post to {base}/bot<token>/sendMessage (tests point it at a fake Bot API on 127.0.0.1).
UPTAKE_TELEGRAM_API_BASE = env.str("UPTAKE_TELEGRAM_API_BASE", default="https://api.telegram.org")
# Destinations resolving to loopback, private, link-local, CGNAT, metadata... addresses are refused
# (core/outbound.py). True lifts the address checks; ALLOWED_HOSTS lifts them for those names only.
UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS = env.bool("UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS", default=False)
UPTAKE_ALERTS_ALLOWED_HOSTS = env.list("UPTAKE_ALERTS_ALLOWED_HOSTS", default=[])

# ---------------------------------------------------------------------------
# E-mail (alerts)
# ---------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="uptake@localhost")

# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # urllib3's DEBUG lines carry request paths, and a Telegram alert's path carries its bot token.
        "urllib3": {"level": "INFO"},
    },
}
