"""GuildHub settings: every value comes from the environment (django-environ).

Each setting is documented in `.env.example`. The defaults run the embedded
demo: SQLite in WAL mode, django-q2's ORM broker, no Redis.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A `.env` beside manage.py is read when present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY", default="insecure-guildhub-demo-key-set-SECRET_KEY-in-production")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
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
    "django.forms",
    "django_htmx",
    "django_q",
    "guildhub",
    "members",
    "syncjobs",
    "roles",
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
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "guildhub.urls"

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

# Form widgets' templates are found like any other (templates/members/widgets/…).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

WSGI_APPLICATION = "guildhub.wsgi.application"
ASGI_APPLICATION = "guildhub.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a worker writes; IMMEDIATE transactions
    # take the write lock up front so concurrent writers queue instead of failing
    # with "database is locked" half way through. Reads through a memory map (up to
    # the first GiB of the file) skip a system call per page: the search's walks and
    # fetches visit thousands of pages in no order (1M members: 5+ character p95
    # 45 -> 30 ms), and every process's connections share the one map of the OS cache.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=1073741824;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Connections stay open between requests on both databases. On SQLite too: opening one
# (the file, then the pragmas above) cost about 1 ms of a 4-6 ms picker answer.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-q2. `timeout` must stay below `retry`, or a slow task is handed to a
# second worker while the first still runs. Missed schedule slots are not
# replayed after downtime (`catch_up`): a sync is about the present.
Q_CLUSTER = {
    "name": "guildhub",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=900),
    "retry": env.int("Q_RETRY", default=1200),
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 500,
    "ack_failures": True,
    "poll": 0.5,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Discord. Every REST call goes to DISCORD_API_BASE; the gateway URL is asked
# of `GET /gateway/bot`, as Discord wants.
DISCORD_TOKEN = env.str("DISCORD_TOKEN", default="")
DISCORD_API_BASE = env.str("DISCORD_API_BASE", default="https://discord.com/api/v10").rstrip("/")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "guildhub.logfilters.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "discord": {"level": env.str("DISCORD_LOG_LEVEL", default="WARNING")},
        "aiohttp.access": {"level": "WARNING"},
    },
}

# Every process using one bot token shares this many requests per second
# (Discord allows 50; the rest is headroom for the bot's own traffic).
DISCORD_GLOBAL_RATE_LIMIT = env.int("DISCORD_GLOBAL_RATE_LIMIT", default=45)
# Whole-call retries of transient Discord failures: count, first delay, cap (seconds).
DISCORD_RETRIES = env.int("DISCORD_RETRIES", default=3)
DISCORD_RETRY_BASE = env.float("DISCORD_RETRY_BASE", default=1.0)
DISCORD_RETRY_CAP = env.float("DISCORD_RETRY_CAP", default=30.0)

# Sync runs hold a lease they renew after every page; a run whose lease expired
# (its worker died) is handed to another worker by the reaper.
SYNC_LEASE_SECONDS = env.int("SYNC_LEASE_SECONDS", default=120)
# Connections a member sync writes through at once on PostgreSQL, where the server's
# index work bounds a big sync and one connection uses one of its cores (SQLite: one).
MEMBER_SYNC_WRITERS = env.int("MEMBER_SYNC_WRITERS", default=2)
# PostgreSQL: how much the member search's GIN indexes gather before merging (kB), for
# writes outside syncs, which every search reads until it is merged, and for a sync's own
# writes, which merge more at a time (cheaper per member) in the sync's work_mem and merge
# the rest when the run ends. See members/pending_lists.py.
MEMBER_SEARCH_PENDING_LIST_KB = env.int("MEMBER_SEARCH_PENDING_LIST_KB", default=1024)
MEMBER_SYNC_PENDING_LIST_KB = env.int("MEMBER_SYNC_PENDING_LIST_KB", default=8192)
MEMBER_SYNC_WORK_MEM_KB = env.int("MEMBER_SYNC_WORK_MEM_KB", default=65536)

# /healthz. The bot is "not running" when it never reported or a shard's heartbeat
# is older than HEALTH_BOT_MAX_AGE seconds; the worker cluster when its schedules
# are overdue by more than HEALTH_CLUSTER_MAX_LAG seconds. Either fails the check
# only when required, so the web app alone is healthy.
HEALTH_BOT_MAX_AGE = env.int("HEALTH_BOT_MAX_AGE", default=120)
HEALTH_REQUIRE_BOT = env.bool("HEALTH_REQUIRE_BOT", default=False)
HEALTH_CLUSTER_MAX_LAG = env.int("HEALTH_CLUSTER_MAX_LAG", default=300)
HEALTH_REQUIRE_CLUSTER = env.bool("HEALTH_REQUIRE_CLUSTER", default=False)

# Seconds the member picker waits for Discord's live search when the cache has no answer.
LIVE_SEARCH_TIMEOUT = env.float("LIVE_SEARCH_TIMEOUT", default=3.0)
