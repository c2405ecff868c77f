"""ASGI entry point: what `manage.py serve` runs under uvicorn.

Django's handler behind the response cache's fast path (stats.graphql.fastpath), which answers
repeated anonymous read queries without entering Django; in front of both, the GraphQL body limit
(stats.graphql.limits.BodyLimit) refuses an oversized body before anything reads it.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ncmec.settings")
django_application = get_asgi_application()

from stats.graphql.fastpath import CachedReads  # noqa: E402  (needs the apps loaded)
from stats.graphql.limits import BodyLimit  # noqa: E402

application = BodyLimit(CachedReads(django_application))
