"""ASGI entry point: what `manage.py serve` runs under uvicorn."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ncmec.settings")
application = get_asgi_application()
