"""Run the zero-cost box's topology on this machine (``make run-local``).

redis-server, gunicorn and nginx start on loopback from the same files in
runtime/service/deploy/ that the box installs; nginx listens on 127.0.0.1:8080. The script stays
in the foreground until Ctrl-C or SIGTERM, then stops every process it started and removes the
temporary directory it made (a --workdir is kept; so are the logs of a process that failed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from devtools.processes import TopologyError, port_in_use
from devtools.topology import LocalTopology

MAX_PORT = 65535
MAX_WORKERS = 64  # API_WORKERS' own limit


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="nginx port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (API_WORKERS)")
    parser.add_argument("--workdir", type=Path, help="logs and rendered configs (default: tmp)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the topology, wait for a signal, stop it."""
    arguments = parse_arguments(argv)
    if not 1 <= arguments.port <= MAX_PORT:
        print(
            f"error: --port {arguments.port} is not a TCP port; use 1-{MAX_PORT}", file=sys.stderr
        )
        return 2
    if not 1 <= arguments.workers <= MAX_WORKERS:
        print(
            f"error: --workers {arguments.workers} is out of range; use 1-{MAX_WORKERS}",
            file=sys.stderr,
        )
        return 2
    if port_in_use(arguments.port):
        print(f"error: 127.0.0.1:{arguments.port} is in use; pass --port", file=sys.stderr)
        return 1
    scratch = arguments.workdir is None
    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="prostudio-local-"))
    topology = LocalTopology(workdir, nginx_port=arguments.port, api_workers=arguments.workers)
    stop = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        topology.start()
    except TopologyError as error:
        print(f"error: {error}", file=sys.stderr)
        if scratch:
            print(f"logs kept in {workdir / 'logs'}", file=sys.stderr)
        return 1
    base = topology.url("")
    print(
        json.dumps(
            {
                "event": "ready",
                "url": base,
                "process_groups": {name: p.pid for name, p in topology.processes.items()},
                "logs": str(workdir / "logs"),
            }
        ),
        flush=True,
    )
    print(
        f"ProStudio on {base}  (Ctrl-C to stop)\n"
        f"  curl {base}/health\n"
        f"  curl {base}/health/ready\n"
        f"  curl -i {base}/api/v1/tracks/demo/waveform?points=16\n"
        f"  curl http://127.0.0.1:{topology.metrics_port}/metrics\n"
        f"  logs: {workdir / 'logs'}",
        flush=True,
    )
    exit_code = 0
    while not stop.wait(0.5):
        stopped = [p for p in topology.processes.values() if not p.running()]
        if stopped:
            print(f"error: {stopped[0].name} exited; see {stopped[0].log}", file=sys.stderr)
            exit_code = 1
            break
    topology.stop()
    print("stopped redis-server, gunicorn and nginx", flush=True)
    if scratch and exit_code == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    elif scratch:
        print(f"logs kept in {workdir / 'logs'}", file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
