"""HTTP caching of anonymous answers by browsers, proxies and CDNs.

An anonymous read query over GET is public: its ``ETag`` is its cache key, which holds the data
version, so it changes with every write; ``Cache-Control: public, max-age, stale-while-revalidate``
lets a CDN keep it that long (``HTTP_CACHE_MAX_AGE`` bounds how old a figure a CDN may show), and
``If-None-Match`` with the current ETag gets a 304 without running the query. Requests carrying
a session or CSRF cookie (staff, GraphiQL) are ``private, no-store``. ``Vary`` names the request
headers an answer depends on; the fast path keys on the same list.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import parse_etags

VARY = ("Accept", "Cookie")  # GraphiQL or JSON; anonymous or not


def has_private_cookie(cookies: dict[str, str]) -> bool:
    """Whether Django would treat the request as a (possible) session: its session or CSRF cookie."""
    return settings.SESSION_COOKIE_NAME in cookies or settings.CSRF_COOKIE_NAME in cookies


def etag(key: str | None, stamp: tuple[int, str]) -> str | None:
    """The answer's entity tag: data version and cache key (strong: the same key, the same bytes)."""
    return f'"{stamp[0]}-{key[:32]}"' if key else None


def matches(request: HttpRequest, current: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    return bool(header) and (current in parse_etags(header) or header.strip() == "*")


def not_modified() -> HttpResponse:
    return HttpResponseNotModified()


def set_headers(response: HttpResponse, request: HttpRequest, tag: str | None, *, private: bool) -> None:
    patch_vary_headers(response, VARY)
    if private:
        patch_cache_control(response, private=True, no_store=True)
    elif tag and request.method == "GET":
        response["ETag"] = tag
        patch_cache_control(
            response,
            public=True,
            max_age=settings.HTTP_CACHE_MAX_AGE,
            stale_while_revalidate=settings.HTTP_CACHE_STALE_WHILE_REVALIDATE,
        )
    elif tag:
        response["ETag"] = tag  # a POST: only the fast path and the app's own cache use it
        patch_cache_control(response, no_cache=True)
    else:
        patch_cache_control(response, no_store=True)
