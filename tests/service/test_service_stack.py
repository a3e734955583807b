"""The service through the real topology: nginx -> gunicorn (unix socket) -> redis-server,
all configured from runtime/service/deploy/ exactly as the box is.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import uuid

import redis
from service_helpers import parse_json_lines, wait_until

from devtools.topology import LocalTopology


def metric_value(text: str, name: str) -> float:
    """Sum of every sample of a metric in the Prometheus text format."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def scrape(stack: LocalTopology) -> str:
    status, _, body = stack.scrape()
    assert status == 200
    return body.decode()


def unique_track() -> str:
    return f"track-{uuid.uuid4().hex[:12]}"


def test_health_answers_without_consulting_redis(stack: LocalTopology) -> None:
    status, headers, body = stack.get("/health")

    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])


def test_ready_when_redis_answers(stack: LocalTopology) -> None:
    status, _, body = stack.get("/health/ready")

    assert status == 200
    assert json.loads(body) == {"status": "ready", "redis": "ok"}


def test_second_read_is_a_cache_hit_counted_in_metrics(stack: LocalTopology) -> None:
    path = f"/api/v1/tracks/{unique_track()}/waveform?points=32"
    hits_before = metric_value(scrape(stack), "prostudio_cache_hits_total")

    first = stack.get(path)
    second = stack.get(path)

    assert first[0] == second[0] == 200
    assert first[1]["X-Cache"] == "MISS"
    assert second[1]["X-Cache"] == "HIT"
    assert first[2] == second[2]
    waveform = json.loads(second[2])
    assert waveform["points"] == 32 and len(waveform["peaks"]) == 32
    assert metric_value(scrape(stack), "prostudio_cache_hits_total") == hits_before + 1


def test_metrics_expose_requests_latency_and_cache_counters(stack: LocalTopology) -> None:
    stack.get("/health")

    text = scrape(stack)

    assert 'prostudio_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'prostudio_http_request_duration_seconds_bucket{le="0.005",route="/health"}' in text
    for name in ("prostudio_cache_hits_total", "prostudio_cache_misses_total"):
        assert re.search(rf"^{name} \d", text, re.MULTILINE), name


def test_redis_outage_turns_readiness_503_but_never_fails_the_api(stack: LocalTopology) -> None:
    cached_path = f"/api/v1/tracks/{unique_track()}/waveform"
    assert stack.get(cached_path)[0] == 200
    errors_before = metric_value(scrape(stack), "prostudio_cache_errors_total")

    stack.stop_redis()
    try:
        status, _, body = stack.get("/health/ready")
        assert status == 503
        outage = json.loads(body)
        assert outage == {"status": "unavailable", "redis": "down"}
        during = [stack.get(cached_path) for _ in range(5)]
        during += [stack.get(f"/api/v1/tracks/{unique_track()}/waveform") for _ in range(5)]
    finally:
        stack.start_redis()

    assert [response[0] for response in during] == [200] * 10
    assert {response[1]["X-Cache"] for response in during} == {"BYPASS"}
    assert metric_value(scrape(stack), "prostudio_cache_errors_total") > errors_before
    wait_until(lambda: stack.get("/health/ready")[0] == 200, what="readiness after the outage")
    wait_until(lambda: stack.get(cached_path)[1]["X-Cache"] == "HIT", what="caching again")


def test_request_id_from_the_caller_is_kept_and_logged(stack: LocalTopology) -> None:
    request_id = f"req-{uuid.uuid4().hex}"
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=5)
    connection.request("GET", "/health", headers={"X-Request-ID": request_id})
    response = connection.getresponse()
    response.read()
    connection.close()

    assert response.getheader("X-Request-ID") == request_id
    wait_until(
        lambda: request_id in stack.log_path("gunicorn").read_text(), what="the request's log"
    )


def test_every_log_line_is_json_and_requests_carry_their_fields(stack: LocalTopology) -> None:
    stack.get(f"/api/v1/tracks/{unique_track()}/waveform")
    missing = stack.get("/no/such/route")[1]["X-Request-ID"]
    # The worker writes its buffered lines at the end of the event-loop turn.
    wait_until(lambda: missing in stack.log_path("gunicorn").read_text(), what="the request's log")

    records = parse_json_lines(stack.log_path("gunicorn"))

    requests = [record for record in records if record.get("event") == "request"]
    assert requests, "no request lines were logged"
    for record in requests:
        assert {"request_id", "method", "path", "status", "latency_ms", "timestamp"} <= set(record)
        assert isinstance(record["latency_ms"], float)
    assert any(record["status"] == 404 for record in requests)
    assert any(record.get("logger") == "gunicorn.error" for record in records)


def test_errors_are_json_with_a_route_label_of_bounded_cardinality(stack: LocalTopology) -> None:
    missing = stack.get(f"/nothing/{uuid.uuid4().hex}")
    bad_points = stack.get("/api/v1/tracks/abc/waveform?points=0")
    bad_id = stack.get("/api/v1/tracks/has.dot/waveform")

    assert missing[0] == bad_id[0] == 404
    assert bad_points[0] == 400
    assert "points" in json.loads(bad_points[2])["error"]
    assert 'route="unmatched",status="404"' in scrape(stack)


def test_writes_are_refused_and_large_bodies_stopped_by_nginx(stack: LocalTopology) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=5)
    connection.request("POST", "/health", body=b"x" * 16)
    small = connection.getresponse()
    small.read()
    connection.request("POST", "/health", body=b"x" * 200_000)
    large = connection.getresponse()
    large.read()
    connection.close()

    assert small.status == 405
    assert small.getheader("Allow") == "GET, HEAD"
    assert large.status == 413


def test_nginx_gzips_large_json_and_serves_the_static_ceiling(stack: LocalTopology) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=5)
    connection.request(
        "GET",
        f"/api/v1/tracks/{unique_track()}/waveform?points=1024",
        headers={"Accept-Encoding": "gzip"},
    )
    response = connection.getresponse()
    body = response.read()
    connection.close()
    static = stack.get("/static/waveform-sample.json")

    assert response.getheader("Content-Encoding") == "gzip"
    assert len(json.loads(gzip.decompress(body))["peaks"]) == 1024
    assert static[0] == 200
    assert "X-Request-ID" not in static[1]
    assert json.loads(static[2])["track_id"] == "static-sample"


def test_service_reaches_the_local_redis_through_its_unix_socket(stack: LocalTopology) -> None:
    stack.get(f"/api/v1/tracks/{unique_track()}/waveform")
    client = redis.Redis(unix_socket_path=str(stack.redis_socket), password=stack.redis_password)

    service_clients = [c for c in client.client_list() if c["name"] == "prostudio"]
    client.close()

    assert service_clients
    assert all(c["laddr"].startswith(str(stack.redis_socket)) for c in service_clients)
