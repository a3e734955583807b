"""Gunicorn settings, shared by the box (systemd), the production container and the tests.

Everything variable comes from the environment, validated before anything starts: a bad value
prints one line naming the variable and gunicorn exits with status 2.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

SERVICE_ROOT = Path(__file__).resolve().parent.parent
if str(SERVICE_ROOT) not in sys.path:
    sys.path.insert(0, str(SERVICE_ROOT))

from prostudio.check_config import settings_or_exit  # noqa: E402
from prostudio.logs import GunicornJsonLogger, gunicorn_logconfig  # noqa: E402

settings = settings_or_exit(os.environ)

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prostudio-metrics-")

wsgi_app = "prostudio.wsgi:app"
bind = [os.environ.get("GUNICORN_BIND", "unix:/run/prostudio/gunicorn.sock")]
# The socket is group-accessible: nginx's user joins the service's group on the box.
umask = 0o007
backlog = 2048
workers = settings.api_workers
# Sync workers: nginx in front buffers requests and responses, so a worker is never tied up
# by a slow client, and one request per process is the cheapest path per request on one core.
worker_class = "sync"
timeout = 30
graceful_timeout = 20
# Recycle workers to bound memory growth; the jitter keeps them from restarting together.
# A restart stalls one worker for a moment (a measured p99 of 175-280 ms in that second), so
# at a t2.micro's ~2,000 requests/s this recycles each worker every few minutes, not seconds.
max_requests = 200_000
max_requests_jitter = 20_000
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


def post_worker_init(worker):
    """Build the application before the first request, so that request pays no set-up."""
    from prostudio.wsgi import application  # noqa: PLC0415

    application()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the merged metrics."""
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)
