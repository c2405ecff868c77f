#!/bin/sh
# Migrate, load the published data into an empty warehouse only (like serve: a restart never touches
# staff corrections), then serve. DATABASE_URL, SECRET_KEY and ALLOWED_HOSTS come from the environment
# (docker-compose.yml).
set -e
uv run --no-sync manage.py migrate --noinput
uv run --no-sync manage.py load_reports --if-empty
exec uv run --no-sync manage.py serve --host 0.0.0.0 --port 8000 --no-demo-admin
