#!/bin/sh
# `docker run IMAGE serve ...` or `docker run IMAGE migrate`: any manage.py command. DATABASE_URL,
# SECRET_KEY and ALLOWED_HOSTS come from the environment (docker-compose.yml). Web replicas run
# `serve --no-migrate`; the one-off `migrate` service migrates and loads the data once.
set -e
if [ "$1" = "sh" ]; then
  exec "$@"
fi
exec uv run --no-sync manage.py "$@"
