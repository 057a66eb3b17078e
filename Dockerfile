# Image for the worker and the gateway in docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY creditstream creditstream
COPY schemas schemas
COPY streams streams
COPY connectors connectors
COPY load load
RUN pip install --no-cache-dir .
ENTRYPOINT []
