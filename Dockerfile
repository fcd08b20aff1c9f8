# One image for every service; docker-compose.yml picks the command of each container.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The sources only: listing them keeps .venv and .devstack (a live cluster) out of the build.
WORKDIR /src
COPY pyproject.toml ./
COPY protos ./protos
COPY billing ./billing
COPY service_kit ./service_kit
COPY pricing ./pricing
COPY metering_svc ./metering_svc
COPY invoicing_svc ./invoicing_svc
COPY settlement_svc ./settlement_svc
COPY gateway ./gateway
COPY devstack ./devstack
# The mandate contract's source: the deploy job compiles it (installed as package data).
COPY contracts ./contracts
RUN pip install ".[chain]" && useradd --system --uid 10001 --no-create-home billing

# Run from an empty folder so imports come from the installed package, not /src.
WORKDIR /app
USER billing
CMD ["python", "-m", "metering_svc", "serve"]
