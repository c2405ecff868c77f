"""One settings module, driven by environment variables with safe defaults.

Every variable is listed in the README's "Configuration" section. With DATABASE_URL unset the
project runs in *local mode*: its own embedded PostgreSQL (ncmec/localdb.py) and a secret key
generated once and kept under .local/.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no.")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
LOCAL_MODE = not DATABASE_URL
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    if DEBUG or LOCAL_MODE:
        LOCAL_DIR.mkdir(exist_ok=True)
        key_file = LOCAL_DIR / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(50))
            key_file.chmod(0o600)
        return key_file.read_text().strip()
    raise ImproperlyConfigured(
        "SECRET_KEY is required when DATABASE_URL is set and DEBUG is off: "
        "set it to a long random string (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )


ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")


def _database(url: str = "", variable: str = "DATABASE_URL") -> dict:
    if not url and LOCAL_MODE:
        from ncmec import localdb

        url = localdb.ensure_running().url
    elif not url:
        url = DATABASE_URL
    try:
        config = dj_database_url.parse(url)
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(
            f"{variable} is not a valid database URL ({exc}); expected postgresql://USER:PASSWORD@HOST:PORT/NAME"
        ) from exc
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"{variable} must point at PostgreSQL (postgresql://...), got {url.split(':', 1)[0]}://"
        )
    options = config.setdefault("OPTIONS", {})
    if not config.get("HOST") and "host" in options:  # a Unix socket given as ?host=/path
        config["HOST"] = options.pop("host")
    options["connect_timeout"] = int(os.environ.get("DB_CONNECT_TIMEOUT", "5"))
    # A connection pool per server process: ASGI runs each request's sync code on a fresh thread,
    # where Django's per-thread persistent connections would reconnect every time.
    pool_size = int(os.environ.get("DB_POOL_SIZE", "10"))
    if pool_size > 0:
        # Django checks each pooled connection on checkout, so a database restart is survived.
        options["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "5")),
        }
    return config


DATABASES = {"default": _database()}
# Threads per server process that run GraphQL requests (ncmec/handler.py); at most DB_POOL_SIZE.
ASGI_THREADS = int(os.environ.get("ASGI_THREADS", "4"))
# Read replicas (PostgreSQL streaming standbys) for anonymous reads; ncmec/replicas.py routes them.
for _number, _url in enumerate(env_list("DATABASE_REPLICA_URLS", ""), start=1):
    DATABASES[f"replica{_number}"] = {**_database(_url, "DATABASE_REPLICA_URLS"), "TEST": {"MIRROR": "default"}}
DATABASE_ROUTERS = ["ncmec.replicas.ReadReplicaRouter"]
REPLICA_MAX_LAG_SECONDS = float(os.environ.get("REPLICA_MAX_LAG_SECONDS", "5"))
SECRET_KEY = _secret_key()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "strawberry_django",
    "import_export",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "axes",
    "corsheaders",
    "stats",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "ncmec.csp.ContentSecurityPolicyMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "pghistory.middleware.HistoryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ncmec.urls"
WSGI_APPLICATION = "ncmec.wsgi.application"
ASGI_APPLICATION = "ncmec.asgi.application"

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "ncmec.staticfiles.StaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# HTTPS hardening: on for deployments, off in local mode where the server speaks plain HTTP.
HTTPS = env_bool("HTTPS", not (LOCAL_MODE or DEBUG))
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain HTTP to the process
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failed logins for one username from
# one address, that pair is refused (HTTP 429) for LOGIN_COOLOFF_MINUTES; never a permanent lockout.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if BEHIND_PROXY else ["REMOTE_ADDR"]
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # GraphiQL reads the token to send it with cookie-authenticated POSTs

# CORS (django-cors-headers): browser apps on these origins may call the API and the downloads.
# Listed origins only (their own origin echoed back, never "*"); credentials only for them.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
if "*" in CORS_ALLOWED_ORIGINS:
    raise ImproperlyConfigured("CORS_ALLOWED_ORIGINS cannot be '*': list the origins (https://app.example.org).")
CORS_URLS_REGEX = r"^/(graphql|downloads/.*)$"
CORS_ALLOW_CREDENTIALS = True
CORS_EXPOSE_HEADERS = ["X-Data-Version", "X-Cache"]
CORS_PREFLIGHT_MAX_AGE = 86400

# Imports: files larger than this are refused with a clear message before they are parsed.
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(20 * 1024 * 1024)))
IMPORT_MAX_ROWS = int(os.environ.get("IMPORT_MAX_ROWS", "1000000"))
DATA_UPLOAD_MAX_MEMORY_SIZE = IMPORT_MAX_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The whole-table CSV export: connections reading its pieces at once (1 reads it in one query).
EXPORT_READERS = max(1, int(os.environ.get("EXPORT_READERS", "2")))


def _import_export_formats() -> list:
    from import_export.formats.base_formats import CSV, JSON, XLSX

    return [CSV, XLSX, JSON]


IMPORT_EXPORT_FORMATS = EXPORT_FORMATS = _import_export_formats()
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
# Exports need the view permission (Viewer and Data editor roles); imports need
# stats.import_observation and go through stats.services (see stats/admin/).
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False

# GraphQL limits, measured on the whole request before any work that grows with it
# (stats/graphql/limits.py; docs/security.md).
GRAPHQL_MAX_BODY_BYTES = int(os.environ.get("GRAPHQL_MAX_BODY_BYTES", str(128 * 1024)))
# A document (the query text) is parsed character by character: ~1 ms per KB of string literal.
GRAPHQL_MAX_DOCUMENT_CHARS = int(os.environ.get("GRAPHQL_MAX_DOCUMENT_CHARS", str(32 * 1024)))
GRAPHQL_MAX_TOKENS = int(os.environ.get("GRAPHQL_MAX_TOKENS", "2000"))
GRAPHQL_MAX_DEPTH = int(os.environ.get("GRAPHQL_MAX_DEPTH", "10"))
GRAPHQL_MAX_ALIASES = int(os.environ.get("GRAPHQL_MAX_ALIASES", "30"))
GRAPHQL_MAX_FIELDS = int(os.environ.get("GRAPHQL_MAX_FIELDS", "1000"))
GRAPHQL_MAX_DIRECTIVES = int(os.environ.get("GRAPHQL_MAX_DIRECTIVES", "5"))
GRAPHQL_MAX_LIST_ITEMS = int(os.environ.get("GRAPHQL_MAX_LIST_ITEMS", "1000"))
GRAPHQL_MAX_INPUT_DEPTH = int(os.environ.get("GRAPHQL_MAX_INPUT_DEPTH", "10"))
GRAPHQL_MAX_PAGE_SIZE = int(os.environ.get("GRAPHQL_MAX_PAGE_SIZE", "10000"))
# List items one request may ask for, estimated from its page sizes before it runs (stats.graphql.budget).
GRAPHQL_MAX_ITEMS = int(os.environ.get("GRAPHQL_MAX_ITEMS", "50000"))
# Parsed and validated documents and compiled plans, per process: each cache holds at most this
# much (estimated), and documents longer than GRAPHQL_CACHED_DOCUMENT_CHARS are never kept.
GRAPHQL_DOCUMENT_CACHE_MB = int(os.environ.get("GRAPHQL_DOCUMENT_CACHE_MB", "16"))
GRAPHQL_CACHED_DOCUMENT_CHARS = int(os.environ.get("GRAPHQL_CACHED_DOCUMENT_CHARS", str(16 * 1024)))
# Server time each client address may spend on uncached GraphQL answers per window (0: no limit;
# staff are never limited). Kept in the default cache (CACHES), shared by all workers using it.
GRAPHQL_RATE_BUDGET_MS = int(os.environ.get("GRAPHQL_RATE_BUDGET_MS", "30000"))
GRAPHQL_RATE_WINDOW_S = int(os.environ.get("GRAPHQL_RATE_WINDOW_S", "60"))
# Whole responses of read queries, per process, keyed by data version (0 turns the cache off).
GRAPHQL_CACHE_MB = int(os.environ.get("GRAPHQL_CACHE_MB", "64"))
# The shared second level of that cache: Redis or Valkey, through Django's cache framework.
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    _redis_timeout = float(os.environ.get("REDIS_TIMEOUT_SECONDS", "0.25"))
    CACHES["responses"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "ncmec",
        "TIMEOUT": 24 * 3600,  # keys carry the data version: old ones are never asked for again
        # Slow or down: give up fast and answer from the database (stats/graphql/cache.py).
        "OPTIONS": {"socket_connect_timeout": _redis_timeout, "socket_timeout": _redis_timeout,
                    "retry": Retry(NoBackoff(), 0)},
    }  # fmt: skip
# HTTP caching of anonymous GET answers by browsers and CDNs (stats/graphql/http_caching.py).
HTTP_CACHE_MAX_AGE = int(os.environ.get("HTTP_CACHE_MAX_AGE", "5"))
HTTP_CACHE_STALE_WHILE_REVALIDATE = int(os.environ.get("HTTP_CACHE_STALE_WHILE_REVALIDATE", "30"))
# Lists whose fields are all plain completed in one walk inside strawberry's execution (stats/graphql/compiled.py).
GRAPHQL_COMPILED = env_bool("GRAPHQL_COMPILED", True)
# Observation reads planned into one SQL statement, answered in front of Django (stats/graphql/planned.py).
GRAPHQL_PLANNED = env_bool("GRAPHQL_PLANNED", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # A client's mistakes (each 4xx is a WARNING from django.request) are one line a minute, not a flood.
    "filters": {"repeated_warnings": {"()": "ncmec.logfilters.RepeatedWarnings", "seconds": 60}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["repeated_warnings"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes.apps": {"level": "WARNING"}},
}
