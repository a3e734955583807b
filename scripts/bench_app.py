"""Benchmark the box's topology on one core (``make bench-app``).

redis-server, gunicorn and nginx start from runtime/service/deploy/ pinned to CPU 0 (the box
has one vCPU); wrk runs on CPU 1 with 100 connections. Measured in one run, one after the other:
nginx alone serving a small static file (the ceiling), then /health/ready and a cached API hit
through the shipped model (one asyncio worker) and through the previous model (the service as
it was at SYNC_MODEL_COMMIT, two sync workers, behind the same nginx and Redis). Prints
requests/s, p50, p99, errors, CPU per request per process group and the Python processes' RSS,
then each target and whether it is met; exits non-zero when one is missed.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devtools.processes import find_binary
from devtools.topology import LocalTopology

REPO_ROOT = Path(__file__).resolve().parents[1]
API_PATH = "/api/v1/tracks/bench-track/waveform?points=64"
READY_PATH = "/health/ready"
STATIC_PATH = "/static/waveform-sample.json"
# The last commit whose service ran gunicorn's sync workers with the WSGI app (2 workers).
SYNC_MODEL_COMMIT = "4bd6b620d2800698ce25e13442fb580c3e8f4533"
SYNC_MODEL_WORKERS = 2
P99_TARGET_MS = 50.0
EFFICIENCY_TARGET = 2.0
RSS_TARGET_MB = 160.0
WARMUP_SECONDS = 2
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class WrkResult:
    """What wrk measured for one URL."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us_per_request: dict[str, float] = field(default_factory=dict)

    @property
    def requests_per_cpu_second(self) -> float:
        """Requests per CPU-second of nginx, gunicorn and Redis together: what one dedicated
        core could serve at this cost.
        """
        total = sum(self.cpu_us_per_request.values())
        return 1e6 / total if total else 0.0

    @property
    def meets_latency_target(self) -> bool:
        """p99 within the target and not one error."""
        return self.p99_ms <= P99_TARGET_MS and self.errors == 0


def _milliseconds(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, the 50th and 99th percentiles and every kind of error from wrk."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    if rate is None or total is None or set(percentiles) != {"50", "99"}:
        raise ValueError(f"could not parse wrk output:\n{output}")
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(count) for count in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(
        requests_per_second=float(rate.group(1)),
        p50_ms=_milliseconds(percentiles["50"]),
        p99_ms=_milliseconds(percentiles["99"]),
        errors=errors,
        requests=int(total.group(1)),
    )


def group_cpu_seconds(process_group: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each process of a process group."""
    used = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == process_group:
            used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return used


def group_rss_mb(process_group: int) -> float:
    """Resident memory of every process of a process group, in MB."""
    total_kb = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if int(fields[2]) == process_group:
            match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
            total_kb += int(match.group(1)) if match else 0
    return total_kb / 1024


def wrk(url: str, *, connections: int, seconds: int, cpu: str) -> str:
    """wrk's report for one URL, wrk pinned to the load generator's core."""
    command = [
        find_binary("taskset"), "-c", cpu, find_binary("wrk"),
        "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def run_wrk(
    url: str, *, connections: int, seconds: int, cpu: str, topology: LocalTopology
) -> WrkResult:
    """A short warm-up (pools grow, caches fill), then the measured run. Each server
    process group's CPU time is charged to the requests, which holds even when other work
    shares the core.
    """
    wrk(url, connections=connections, seconds=WARMUP_SECONDS, cpu=cpu)
    groups = {name: process.pid for name, process in topology.processes.items()}
    before = {name: group_cpu_seconds(group) for name, group in groups.items()}
    result = parse_wrk(wrk(url, connections=connections, seconds=seconds, cpu=cpu))
    for name, group in groups.items():
        after = group_cpu_seconds(group)
        spent = sum(after.values()) - sum(before[name].get(pid, 0.0) for pid in after)
        result.cpu_us_per_request[name] = spent / max(result.requests, 1) * 1e6
    return result


def cache_hit_ratio(topology: LocalTopology) -> float:
    """Hits over reads, from the service's own metrics (on their own port; an earlier
    release served them on /metrics through nginx)."""
    try:
        text = topology.scrape()[2].decode()
    except OSError:
        text = topology.get("/metrics")[2].decode()

    def total(name: str) -> float:
        match = re.search(rf"^{name} ([\d.e+]+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    hits, misses = total("prostudio_cache_hits_total"), total("prostudio_cache_misses_total")
    return hits / (hits + misses) if hits + misses else 0.0


def export_sync_model(destination: Path) -> Path:
    """The service tree at SYNC_MODEL_COMMIT, extracted from git into ``destination``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", SYNC_MODEL_COMMIT, "runtime/service"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(
            f"error: cannot read the sync model at commit {SYNC_MODEL_COMMIT[:12]} from git "
            f"({archive.stderr.decode().strip()}); run the benchmark in a full clone"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination / "runtime" / "service"


@dataclass
class ModelRun:
    """What one server model measured."""

    label: str
    results: dict[str, WrkResult]
    python_rss_mb: float
    hit_ratio: float


def measure_model(
    label: str, topology: LocalTopology, paths: dict[str, str], arguments: argparse.Namespace
) -> ModelRun:
    """Start a topology, warm the cache, run wrk on each path, read RSS and the hit ratio."""
    with topology:
        topology.get(API_PATH)
        status, headers, _ = topology.get(API_PATH)
        if status != 200 or headers.get("X-Cache") != "HIT":
            raise SystemExit(f"error: {label}: the API path is not cached ({status} {headers})")
        results = {
            name: run_wrk(
                topology.url(path),
                connections=arguments.connections,
                seconds=arguments.seconds,
                cpu=arguments.load_cpu,
                topology=topology,
            )
            for name, path in paths.items()
        }
        rss = group_rss_mb(topology.processes["gunicorn"].pid)
        hit_ratio = cache_hit_ratio(topology)
    return ModelRun(label, results, rss, hit_ratio)


def print_results(runs: list[ModelRun]) -> None:
    """One row per model and path."""
    print(
        f"{'model':<26}{'path':<8}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
        f"   CPU us/request: nginx gunicorn redis total -> requests per CPU-second"
    )
    for run in runs:
        for name, result in run.results.items():
            cpu = result.cpu_us_per_request
            print(
                f"{run.label:<26}{name:<8}{result.requests_per_second:>8.0f}"
                f"{result.p50_ms:>8.2f}{result.p99_ms:>8.2f}{result.errors:>7}"
                f"   {cpu.get('nginx', 0):>20.0f} {cpu.get('gunicorn', 0):>8.0f}"
                f" {cpu.get('redis', 0):>5.0f} {sum(cpu.values()):>5.0f}"
                f" -> {result.requests_per_cpu_second:.0f}"
            )
    for run in runs:
        if not run.python_rss_mb:
            continue
        print(
            f"{run.label}: RSS of the Python processes (gunicorn arbiter + workers) "
            f"{run.python_rss_mb:.0f} MB; cache hit ratio {run.hit_ratio:.2%}"
        )


def report_targets(chosen: ModelRun, sync: ModelRun, static: WrkResult) -> bool:
    """Print each target with its figure; True when every one is met."""
    verdicts = []
    for name in ("ready", "api"):
        result = chosen.results[name]
        verdicts.append(
            (
                f"{name}: p99 <= {P99_TARGET_MS:.0f} ms and 0 errors at 100 connections",
                result.meets_latency_target,
                f"p99 {result.p99_ms:.2f} ms, {result.errors} errors",
            )
        )
    for name in ("ready", "api"):
        ratio = (
            chosen.results[name].requests_per_cpu_second
            / sync.results[name].requests_per_cpu_second
        )
        verdicts.append(
            (
                f"{name}: >= {EFFICIENCY_TARGET:.0f}x the requests per CPU-second of sync workers",
                ratio >= EFFICIENCY_TARGET,
                f"{ratio:.2f}x",
            )
        )
    verdicts.append(
        (
            f"RSS of all Python processes <= {RSS_TARGET_MB:.0f} MB",
            chosen.python_rss_mb <= RSS_TARGET_MB,
            f"{chosen.python_rss_mb:.0f} MB",
        )
    )
    api = chosen.results["api"]
    print(
        f"api / static ceiling: {api.requests_per_second / static.requests_per_second:.1%} "
        f"measured, {api.requests_per_cpu_second / static.requests_per_cpu_second:.1%} "
        "by CPU per request"
    )
    for target, met, figure in verdicts:
        print(f"target {target}: {'met' if met else 'MISSED'} ({figure})")
    return all(met for _, met, _ in verdicts)


def main(argv: list[str] | None = None) -> int:
    """Measure the static ceiling, the shipped model and the sync model; report the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="API_WORKERS (the box uses 1)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    arguments = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        print("error: the benchmark needs two CPUs (server and load generator)", file=sys.stderr)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="prostudio-bench-"))
    sync_root = export_sync_model(workdir / "sync-model")
    print(
        f"redis-server, gunicorn and nginx (1 worker) on CPU {arguments.server_cpu}; wrk on CPU "
        f"{arguments.load_cpu}, {arguments.connections} connections, {arguments.seconds} s per "
        f"path after a {WARMUP_SECONDS} s warm-up",
        flush=True,
    )

    def topology(name: str, **options: object) -> LocalTopology:
        return LocalTopology(
            workdir / name,
            nginx_workers="1",
            cpu=arguments.server_cpu,
            **options,  # type: ignore[arg-type]
        )

    paths = {"static": STATIC_PATH, "ready": READY_PATH, "api": API_PATH}
    chosen = measure_model(
        f"asyncio x{arguments.workers}",
        topology("asgi", api_workers=arguments.workers),
        paths,
        arguments,
    )
    static = chosen.results.pop("static")
    sync = measure_model(
        f"sync x{SYNC_MODEL_WORKERS} ({SYNC_MODEL_COMMIT[:7]})",
        topology("sync", api_workers=SYNC_MODEL_WORKERS, service_root=sync_root),
        {"ready": READY_PATH, "api": API_PATH},
        arguments,
    )
    print_results([ModelRun("nginx static ceiling", {"static": static}, 0.0, 0.0), chosen, sync])
    return 0 if report_targets(chosen, sync, static) else 1


if __name__ == "__main__":
    raise SystemExit(main())
