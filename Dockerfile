# syntax=docker/dockerfile:1
#
# One image for every service of the platform. Each container chooses what it runs:
#   python -m services.<name>                 a service (HTTP + Kafka consumers in one process)
#   python -m shared.cli topics create        create every topic declared in shared/topics.py
#   python -m shared.cli db migrate <name>    apply <name>'s migrations (MIGRATION_DATABASE_URL = owner role)
# The default command only prints the CLI's help.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with the dependencies and the project ------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, so this layer is rebuilt only when pyproject.toml or the lock changes.
# requirements.lock (a pip constraints file) is used when present; the glob keeps the build working
# without it.
COPY pyproject.toml requirements.lock* ./
RUN set -eu; \
    constraints=""; \
    if [ -f requirements.lock ]; then constraints="-c requirements.lock"; fi; \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt; \
    pip install $constraints -r /tmp/requirements.txt

# Then the code: `pip install .` installs the packages with their SQL migrations (package data).
COPY shared ./shared
COPY services ./services
RUN set -eu; \
    constraints=""; \
    if [ -f requirements.lock ]; then constraints="-c requirements.lock"; fi; \
    pip install $constraints --no-deps . \
    && pip check

# --- runtime -------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8000 \
    LOG_FORMAT=json

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# Liveness only (the process answers); orchestrators check /health/ready for readiness themselves.
# No curl in the slim image: the standard library does it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HTTP_PORT', '8000') + '/health/live', timeout=3)"]

CMD ["python", "-m", "shared.cli", "--help"]
