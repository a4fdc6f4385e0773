"""Django settings. Every value comes from the environment (see README "Configuration")."""

from __future__ import annotations

import sys

import django_stubs_ext

from backoffice.config import BASE_DIR, ConfigError, Env, parse_database_url, streaming_settings

# Lets admin.ModelAdmin[Model] and friends be subscripted at run time, as the type stubs expect.
django_stubs_ext.monkeypatch()

try:
    env = Env(dotenv=BASE_DIR / ".env")
    _db = parse_database_url(
        env.str("DATABASE_URL", "postgresql://backoffice:backoffice@127.0.0.1:55432/backoffice")
    )
    DEBUG = env.bool("DJANGO_DEBUG", True)
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me-in-production")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    KAFKA_BOOTSTRAP_SERVERS = env.list("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    REDIS_URL = env.str("REDIS_URL", "redis://127.0.0.1:56379/0")
    STREAMING = streaming_settings(env)
    LOG_LEVEL = env.str("LOG_LEVEL", "INFO").upper()
    # The calendar whose business days the back office works on: the business date every page
    # filters by is its latest business day on or before the clock's today (docs/time.md).
    BUSINESS_CALENDAR = env.str("BUSINESS_CALENDAR", "NYSE")
except ConfigError as error:
    sys.stderr.write(f"configuration error: {error}\n")
    raise SystemExit(2) from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_tables2",
    "django_filters",
    "backoffice.streaming",
    "backoffice.audit",
    "trades",
    "compliance",
    "settlement",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"

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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": _db.host,
        "PORT": _db.port,
        "NAME": _db.name,
        "USER": _db.user,
        "PASSWORD": _db.password,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "connect_timeout": 5,
            # The planner's default (4) prices a random page read as if it came off a spinning
            # disk. The working set of a day is in memory, so with the default every batch's
            # `trade_id = ANY(<a thousand ids>)` was planned as a (parallel) scan of the whole
            # table, its cost growing with the day; 1.1 makes it the index probes it should be.
            "options": "-c random_page_cost=1.1",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TIMEZONE = "UTC"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Back office API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "backoffice.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "kafka": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}
