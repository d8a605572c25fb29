# MindHarbor server image: non-root, read-only root filesystem friendly.
# Writes go only to /data (a volume: SQLite database, local file store, generated keys) and
# /tmp (a tmpfs: the workers' metric files). Build: docker build -t mindharbor .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
RUN python -m venv /opt/mindharbor \
 && /opt/mindharbor/bin/pip install --no-cache-dir -c requirements.lock . \
 && /opt/mindharbor/bin/python -m compileall -q /opt/mindharbor

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin mindharbor \
 && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /opt/mindharbor /opt/mindharbor
ENV PATH=/opt/mindharbor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MINDHARBOR_DATA_DIR=/data \
    MINDHARBOR_HOST=0.0.0.0 \
    MINDHARBOR_PORT=1337 \
    MINDHARBOR_METRICS_DIR=/tmp/mindharbor-metrics
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 1337
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:1337/parse/health/live', timeout=2)"]
CMD ["mindharbor", "serve", "--workers", "2"]
