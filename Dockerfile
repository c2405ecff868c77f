# The web service for docker compose: uv-managed environment, non-root user, static files collected at build
# (web replicas start with `serve --no-migrate`; the one-off `migrate` service migrates).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/app/.venv UV_LINK_MODE=copy
WORKDIR /app

RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
# Settings need a database URL to load; collectstatic never connects.
RUN DATABASE_URL=postgresql://build@localhost/build SECRET_KEY=build-only \
    uv run --no-sync manage.py collectstatic --noinput
RUN useradd --create-home --uid 10001 ncmec \
    && mkdir -p /app/staticfiles && chown -R ncmec /app/staticfiles
USER ncmec

EXPOSE 8000
ENTRYPOINT ["/app/docker-entrypoint.sh"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--no-demo-admin", "--no-migrate"]
