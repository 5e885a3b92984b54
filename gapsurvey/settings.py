"""
GapSurvey settings, read from environment variables only.

With nothing set, the app runs on an embedded SQLite file and executes Celery
tasks eagerly in-process, so ``make run`` needs no server. Production sets
``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` (Celery broker), ``SECRET_KEY``
and ``ALLOWED_HOSTS``; with ``DEBUG`` off every deploy check passes.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in env_str(name, default).split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (export SECRET_KEY=... or DEBUG=1 for development)."
        )
    SECRET_KEY = "development-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Absolute base used in links shown to consultants (staff link, QR codes) when
# the request is not at hand, e.g. in emails. Empty: built from the request.
SITE_URL = env_str("SITE_URL").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "surveys",
    "analysis",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "gapsurvey.headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gapsurvey.urls"

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

WSGI_APPLICATION = "gapsurvey.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'gapsurvey.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "surveys:engagement_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Uploads (contact lists, paper sheets) are small; refuse anything huge early.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)

# --- Email -------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "GapSurvey <survey@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# No SMTP host configured: print emails to the terminal (embedded default).
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)

# Customer invitation emails (sent by the worker, surveys/mailing.py).
# Messages per second per worker process (0: as fast as the mail server takes them). Paced only
# towards a mail server: printed to the terminal (the embedded default) there is nothing to spare.
GAPSURVEY_EMAIL_RATE = env_int("GAPSURVEY_EMAIL_RATE", 10 if EMAIL_HOST else 0)
# Emails per task: one SMTP connection each.
GAPSURVEY_EMAIL_BATCH_SIZE = env_int("GAPSURVEY_EMAIL_BATCH_SIZE", 50)
# Tries per email before it is marked failed; the wait doubles from the first.
GAPSURVEY_EMAIL_MAX_ATTEMPTS = env_int("GAPSURVEY_EMAIL_MAX_ATTEMPTS", 4)
GAPSURVEY_EMAIL_RETRY_SECONDS = env_int("GAPSURVEY_EMAIL_RETRY_SECONDS", 60)
# An email queued (or being sent) this long past its time was lost with a worker or the
# broker; the periodic sweep queues it again.
GAPSURVEY_EMAIL_STALE_SECONDS = env_int("GAPSURVEY_EMAIL_STALE_SECONDS", 600)

# --- Celery --------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
# Without a broker the tasks run in-process, so the embedded default needs no server.
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660)
CELERY_RESULT_EXPIRES = 3600
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Added to the Celery worker's niceness at start (gapsurvey/celery.py): the analysis uses every core
# it can, and web requests on the same machine must not queue behind it.
GAPSURVEY_WORKER_NICE = env_int("GAPSURVEY_WORKER_NICE", 10)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task taken by a worker that died (acks_late) goes back to the queue after this long.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    # Queueing from a web request gives up at once when Redis is down (the sweep queues the run
    # later) instead of retrying the connection for ~6 s while the customer waits.
    "max_retries": 0,
}
CELERY_TIMEZONE = TIME_ZONE
# Every periodic task, in one place (run by `celery beat`).
CELERY_BEAT_SCHEDULE = {
    "analysis-sweep": {"task": "analysis.analysis_sweep_task", "schedule": 60.0},
    "invitation-emails-sweep": {"task": "surveys.invitation_emails_sweep_task", "schedule": 60.0},
    "invitation-reminders": {"task": "surveys.invitation_reminders_queue_task", "schedule": 900.0},
}

# --- Cache and limits on guessing ------------------------------------------------
# Shared by every web process when Redis is there (the guessing and login limits
# count across processes); per process otherwise (the embedded default).
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "gapsurvey",
            # A Redis that drops packets must not hang public pages (gapsurvey/throttle.py gives up).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Wrong links or workshop codes one address may try before waiting (gapsurvey/throttle.py).
GAPSURVEY_GUESS_LIMIT = env_int("GAPSURVEY_GUESS_LIMIT", 30)
GAPSURVEY_GUESS_WINDOW_SECONDS = env_int("GAPSURVEY_GUESS_WINDOW_SECONDS", 600)
# Failed logins per account (and four times as many per address) before waiting.
GAPSURVEY_LOGIN_LIMIT = env_int("GAPSURVEY_LOGIN_LIMIT", 5)
GAPSURVEY_LOGIN_WINDOW_SECONDS = env_int("GAPSURVEY_LOGIN_WINDOW_SECONDS", 900)
# Behind a proxy that appends the client's address to X-Forwarded-For (and only then).
USE_X_FORWARDED_FOR = env_bool("USE_X_FORWARDED_FOR", False)
# Part of every limit's cache key; the test suite gives each test its own.
GAPSURVEY_THROTTLE_NAMESPACE = "v1"

# --- Security ------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    # Behind a TLS-terminating proxy (docker compose, a load balancer).
    if env_bool("USE_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Health checks come over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- GapSurvey -----------------------------------------------------------------
# Longest single answer item; long enough for a sentence, short enough to stay one idea.
GAPSURVEY_ITEM_MAX_LENGTH = env_int("GAPSURVEY_ITEM_MAX_LENGTH", 500)
GAPSURVEY_MAX_ITEMS_PER_QUESTION = env_int("GAPSURVEY_MAX_ITEMS_PER_QUESTION", 15)
GAPSURVEY_IMPORT_MAX_BYTES = env_int("GAPSURVEY_IMPORT_MAX_BYTES", 20 * 1024 * 1024)

# --- Analysis --------------------------------------------------------------------
# Theme engine: "minilm" (sentence embeddings, falls back to "tfidf" when the model can't load) or "tfidf".
ANALYSIS_ENGINE = env_str("ANALYSIS_ENGINE", "minilm")
# Re-analyse after new answers. Off without a broker: eager tasks would run the
# analysis inside every submission's request.
ANALYSIS_ON_SUBMIT = env_bool("ANALYSIS_ON_SUBMIT", bool(REDIS_URL))
# A run waits this long after the first new answer, so a burst shares one run.
ANALYSIS_DEBOUNCE_SECONDS = env_int("ANALYSIS_DEBOUNCE_SECONDS", 30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
