# The web service for docker compose: uv-managed environment, non-root user, migrations on start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/app/.venv UV_LINK_MODE=copy
WORKDIR /app

RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN useradd --create-home --uid 10001 ncmec \
    && mkdir -p /app/staticfiles && chown -R ncmec /app/staticfiles
USER ncmec

EXPOSE 8000
ENTRYPOINT ["/app/docker-entrypoint.sh"]
