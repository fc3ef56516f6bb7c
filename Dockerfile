# hashmatch on the CPU: the project with its [postgres] extra (psycopg 3 and its pool), the
# exact JPEG planes through libturbojpeg0, `hashmatch serve` on all interfaces.
#
#   docker build -t hashmatch .
#   docker run -p 50051:50051 -p 9464:9464 -v hm-data:/data hashmatch             # SQLite
#   docker run -e HASHMATCH_DATABASE_URL=postgresql://hashmatch@db/hashmatch \
#              -e PGPASSWORD=... -p 50051:50051 hashmatch                        # PostgreSQL
#
# With a database URL, /data keeps only this replica's caches and local stores (the index
# snapshot, the audit log): see docs/DEPLOY.md.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends libturbojpeg0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/hashmatch
COPY pyproject.toml README.md ./
COPY hashmatch ./hashmatch
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir ".[postgres]"
ENV PATH=/opt/venv/bin:$PATH

VOLUME /data
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s \
    CMD python -c "import sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; sys.exit(g.HealthStub(grpc.insecure_channel('127.0.0.1:50051')).Check(h.HealthCheckRequest(), timeout=3).status != h.HealthCheckResponse.SERVING)"

# SIGTERM drains: NOT_SERVING, admitted calls finished within [server] grace_seconds, the
# index snapshot written; give the orchestrator's stop timeout more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hashmatch", "serve", "--backend", "cpu", "--data-dir", "/data", \
            "--listen", "0.0.0.0:50051", "--metrics-listen", "0.0.0.0:9464"]
