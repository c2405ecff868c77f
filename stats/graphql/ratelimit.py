"""A budget of server time per client address for uncached GraphQL answers.

Every answer the server computes (not one served from the response cache) is charged its
milliseconds to the caller's address for the current window (GRAPHQL_RATE_WINDOW_S); once the
address has spent GRAPHQL_RATE_BUDGET_MS, its requests are answered 429 with Retry-After until
the window ends. Cheap and cached reads cost next to nothing, so dashboards are never limited;
a client sending expensive one-off queries is. Staff are never limited.

The counters live in Django's default cache (CACHES): per process with the local-memory cache,
shared by every worker and server with a shared one. If the cache cannot be reached, requests
are let through (and a warning logged): the limit protects the service, it must not stop it.
The client's address is found as for login throttling (django-axes: REMOTE_ADDR, which uvicorn
sets from X-Forwarded-For behind a trusted proxy).
"""

from __future__ import annotations

import logging
import math
import time

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)
KEY_PREFIX = "stats:graphql:spent"


def _applies(request: HttpRequest) -> bool:
    if not settings.GRAPHQL_RATE_BUDGET_MS:
        return False
    user = getattr(request, "user", None)
    return not (user is not None and user.is_authenticated and user.is_staff)


def _window() -> tuple[int, float]:
    """The current window's number and the seconds left in it."""
    length = settings.GRAPHQL_RATE_WINDOW_S
    now = time.time()
    return int(now // length), length - now % length


def _key(request: HttpRequest, window: int) -> str:
    return f"{KEY_PREFIX}:{get_client_ip_address(request) or 'unknown'}:{window}"


def refusal(request: HttpRequest) -> JsonResponse | None:
    """A 429 when this client has spent its budget for the current window, else None."""
    if not _applies(request):
        return None
    window, left = _window()
    try:
        spent = caches["default"].get(_key(request, window), 0)
    except Exception as exc:  # any cache backend's failure: let the request through
        logger.warning("GraphQL rate limit: the cache cannot be read (%s); not limiting", exc)
        return None
    budget = settings.GRAPHQL_RATE_BUDGET_MS
    if spent < budget:
        return None
    retry = max(1, math.ceil(left))
    response = JsonResponse(
        {
            "errors": [
                {
                    "message": f"This address has used {spent} ms of server time on uncached answers in the last "
                    f"{settings.GRAPHQL_RATE_WINDOW_S} s (budget {budget} ms); try again in {retry} s, "
                    "or repeat queries the server has answered before (they are served from its cache)."
                }
            ]
        },
        status=429,
    )
    response["Retry-After"] = str(retry)
    return response


def charge(request: HttpRequest, seconds: float) -> None:
    """Add a computed answer's time to its client's spending in the current window."""
    if not _applies(request):
        return
    window, _ = _window()
    key = _key(request, window)
    cost = max(1, round(seconds * 1000))
    cache = caches["default"]
    try:
        cache.add(key, 0, timeout=2 * settings.GRAPHQL_RATE_WINDOW_S)
        try:
            cache.incr(key, cost)
        except ValueError:  # expired between add and incr
            cache.set(key, cost, timeout=2 * settings.GRAPHQL_RATE_WINDOW_S)
    except Exception as exc:  # any cache backend's failure: not charging is the safe side
        logger.warning("GraphQL rate limit: the cache cannot be written (%s); not limiting", exc)
