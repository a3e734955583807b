"""Benchmark the box's topology on one core (``make bench-app``).

redis-server, gunicorn and nginx start from runtime/service/deploy/ pinned to CPU 0 (a t2.micro
has one vCPU); wrk runs on CPU 1 with 100 connections. In the same run nginx serves a small
static file on that core: the ceiling the API is compared with. Prints requests/s, p50, p99 and
errors for both, and exits non-zero when the API misses its target (p99 <= 50 ms, no errors).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVICE_ROOT = Path(__file__).resolve().parents[1] / "runtime" / "service"
sys.path.insert(0, str(SERVICE_ROOT))

from prostudio.topology import LocalTopology, find_binary  # noqa: E402

API_PATH = "/api/v1/tracks/bench-track/waveform?points=64"
STATIC_PATH = "/static/waveform-sample.json"
P99_TARGET_MS = 50.0
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
    cpu_us_per_request: dict[str, float]

    @property
    def capacity_per_core(self) -> float:
        """Requests/s one dedicated core could serve, from the CPU each request cost."""
        total = sum(self.cpu_us_per_request.values())
        return 1e6 / total if total else 0.0


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
        cpu_us_per_request={},
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


def run_wrk(
    url: str, *, connections: int, seconds: int, cpu: str, topology: LocalTopology
) -> WrkResult:
    """wrk pinned to the load generator's core; also charges each server process's CPU time
    to the requests, which holds even when other work shares the core.
    """
    groups = {name: process.pid for name, process in topology.processes.items()}
    before = {name: group_cpu_seconds(group) for name, group in groups.items()}
    command = [
        find_binary("taskset"), "-c", cpu, find_binary("wrk"),
        "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", url,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = parse_wrk(output)
    for name, group in groups.items():
        after = group_cpu_seconds(group)
        spent = sum(after.values()) - sum(before[name].get(pid, 0.0) for pid in after)
        result.cpu_us_per_request[name] = spent / max(result.requests, 1) * 1e6
    return result


def cache_hit_ratio(topology: LocalTopology) -> float:
    """Hits over reads, from the service's own /metrics."""
    text = topology.get("/metrics")[2].decode()

    def total(name: str) -> float:
        match = re.search(rf"^{name} ([\d.e+]+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    hits, misses = total("prostudio_cache_hits_total"), total("prostudio_cache_misses_total")
    return hits / (hits + misses) if hits + misses else 0.0


def main(argv: list[str] | None = None) -> int:
    """Start the pinned topology, measure the static ceiling and the cached API, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="API_WORKERS (the box uses 2)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    arguments = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        print("error: the benchmark needs two CPUs (server and load generator)", file=sys.stderr)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="prostudio-bench-"))
    topology = LocalTopology(
        workdir,
        api_workers=arguments.workers,
        nginx_workers="1",
        cpu=arguments.server_cpu,
    )
    with topology:
        status, headers, _ = topology.get(API_PATH)
        if status != 200 or topology.get(API_PATH)[1].get("X-Cache") != "HIT":
            print(f"error: the API path is not cached ({status} {headers})", file=sys.stderr)
            return 1
        print(
            f"topology: redis-server, gunicorn ({arguments.workers} sync workers), nginx "
            f"(1 worker) on CPU {arguments.server_cpu}; wrk on CPU {arguments.load_cpu}, "
            f"{arguments.connections} connections, {arguments.seconds} s each",
            flush=True,
        )
        results = {
            "static": run_wrk(
                topology.url(STATIC_PATH),
                connections=arguments.connections,
                seconds=arguments.seconds,
                cpu=arguments.load_cpu,
                topology=topology,
            ),
            "api": run_wrk(
                topology.url(API_PATH),
                connections=arguments.connections,
                seconds=arguments.seconds,
                cpu=arguments.load_cpu,
                topology=topology,
            ),
        }
        hit_ratio = cache_hit_ratio(topology)

    print(
        f"{'':8}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'requests':>10}"
        f"   CPU per request (us): nginx gunicorn redis -> requests/s per dedicated core"
    )
    for name, result in results.items():
        cpu = result.cpu_us_per_request
        print(
            f"{name:8}{result.requests_per_second:>12.0f}{result.p50_ms:>10.2f}"
            f"{result.p99_ms:>10.2f}{result.errors:>8}{result.requests:>10}"
            f"   {cpu.get('nginx', 0):>5.0f} {cpu.get('gunicorn', 0):>8.0f} "
            f"{cpu.get('redis', 0):>5.0f} -> {result.capacity_per_core:.0f}"
        )
    api, static = results["api"], results["static"]
    ratio = api.requests_per_second / static.requests_per_second
    capacity_ratio = api.capacity_per_core / static.capacity_per_core
    print(
        f"api / static ceiling: {ratio:.1%} measured, {capacity_ratio:.1%} by CPU per request;"
        f" cache hit ratio: {hit_ratio:.2%}"
    )
    met = api.p99_ms <= P99_TARGET_MS and api.errors == 0
    print(
        f"target p99 <= {P99_TARGET_MS:.0f} ms with 0 errors: "
        f"{'met' if met else 'MISSED'} (p99 {api.p99_ms:.2f} ms, {api.errors} errors)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
