"""Content-Security-Policy on every response (Django 5.2 has no built-in one).

The default policy allows only this site's own scripts, styles, images and fonts, so an injected
``<script>`` or a third-party script cannot run in the admin or the explorer. A view that needs
more (GraphiQL runs one inline script by nonce) sets its own header, which this middleware leaves alone.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

BASE = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    # The admin and GraphiQL set style attributes from JavaScript; styles cannot run code.
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy(**extra: list[str]) -> str:
    """The base policy with sources added to some directives, e.g. ``policy(script_src=[...])``."""
    directives = {name: list(sources) for name, sources in BASE.items()}
    for name, sources in extra.items():
        directives[name.replace("_", "-")] += sources
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


DEFAULT = policy()


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", DEFAULT)
        return response
