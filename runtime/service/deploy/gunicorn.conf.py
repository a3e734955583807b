"""Gunicorn settings, shared by the box (systemd), the production container and the tests.

Everything variable comes from the environment, validated before anything starts: a bad value
prints one line naming the variable and gunicorn exits with status 2.
"""

import os
import shutil
import tempfile
from pathlib import Path

# gunicorn puts its working directory (the service's root: systemd's WorkingDirectory, the
# image's WORKDIR) on sys.path before it reads this file, so `prostudio` imports from there.
from prostudio.check_config import settings_or_exit
from prostudio.logs import GunicornJsonLogger, gunicorn_logconfig

settings = settings_or_exit(os.environ)

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prostudio-metrics-")

wsgi_app = "prostudio.asgi:app"
# On the box systemd's prostudio.socket hands the socket over (LISTEN_FDS) and bind is unused.
bind = [os.environ.get("GUNICORN_BIND", "unix:/run/prostudio-api/gunicorn.sock")]
# The socket is group-accessible: nginx's user joins the service's group on the box.
umask = 0o007
backlog = 2048
# One asyncio worker per core (API_WORKERS: 1 on the box, one per vCPU in a task): it serves
# every request in flight on one event loop. A second worker on the same core only adds
# context switches (measured: a worse p99 at the same throughput).
workers = settings.api_workers
worker_class = "prostudio.worker.ServiceWorker"
# The uvicorn worker takes its keep-alive timeout from here. It must outlast nginx's upstream
# keepalive_timeout (60 s) and the ALB's idle timeout (60 s), so the client side always closes
# an idle connection first and never sends a request into one the worker is closing.
keepalive = 75
timeout = 30
graceful_timeout = 20
# Recycle workers to bound memory growth; the jitter keeps them from restarting together.
# A recycled worker finishes its requests and exits; the next one starts within a second, and
# nginx retries a request that met a closing connection (see proxy_params.conf).
max_requests = 1_000_000
max_requests_jitter = 100_000
# The heartbeat files (created with mkstemp) live in memory: a slow disk must not get healthy
# workers killed.
SHARED_MEMORY = "/dev/shm"  # noqa: S108
worker_tmp_dir = SHARED_MEMORY if os.path.isdir(SHARED_MEMORY) else None
# One JSON line per request comes from the application; gunicorn's own records are JSON too.
accesslog = None
logger_class = GunicornJsonLogger
logconfig_dict = gunicorn_logconfig(settings.log_level)
control_socket_disable = True
proc_name = "prostudio"


def on_starting(server):
    """Start from an empty metrics directory: files of a previous run would be merged in."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o750)


def when_ready(server):
    """Serve the merged metrics from the master, on their own port (METRICS_BIND)."""
    from prostudio.metrics import serve_merged  # noqa: PLC0415

    try:
        serve_merged(
            settings.metrics_host, settings.metrics_port, os.environ["PROMETHEUS_MULTIPROC_DIR"]
        )
    except OSError as error:
        # The service answers without its metrics rather than not at all.
        server.log.error(
            "metrics_unavailable on %s:%s: %s", settings.metrics_host, settings.metrics_port, error
        )


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the merged metrics."""
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)
