"""Hostile input gets a 4xx: query values, metric labels, /metrics under any spelling, the
readiness answer, and nginx's per-client limits, through the real nginx -> gunicorn -> Redis.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_from_bytes

from hypothesis import given, settings
from hypothesis import strategies as st
from local_service import local_service
from prostudio import origin
from prostudio.app import WAVEFORM_ROUTE, build_application
from prostudio.settings import load_settings
from service_helpers import wait_until
from test_service_redis import call

from devtools.redis_servers import RedisServer
from devtools.topology import LocalTopology

STRICT_POINTS = re.compile(r"[0-9]{1,4}")
TESTS_DIR = str(Path(__file__).parent)
# As deploy/nginx.conf sets limit_conn.
PER_CLIENT_CONNECTIONS = 32
CONNECTIONS_TRIED = 48
METRICS_SPELLINGS = (
    "/metrics",
    "/%6Detrics",
    "/metric%73",
    "/%6d%65%74%72%69%63%73",
    "/metrics/",
    "//metrics",
    "/./metrics",
    "/static/../metrics",
    "/metrics?format=text",
    "/metrics%2F",
    "/METRICS",
)


def expected_status(encoded: str) -> int:
    """200 for 1-4 ASCII digits within the bounds, as the query decodes; else 400."""
    values = parse_qs(f"points={encoded}", keep_blank_values=True)["points"]
    value = values[-1]
    if STRICT_POINTS.fullmatch(value) and origin.MIN_POINTS <= int(value) <= origin.MAX_POINTS:
        return 200
    return 400


def raw_get(connect: socket.socket, target: str, headers: str = "") -> tuple[int, bytes]:
    """Send one request line as written (no client-side normalisation); status and body."""
    with connect as conn:
        conn.settimeout(5)
        conn.sendall(f"GET {target} HTTP/1.0\r\nHost: localhost\r\n{headers}\r\n".encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def through_nginx(stack: LocalTopology, target: str, headers: str = "") -> tuple[int, bytes]:
    return raw_get(socket.create_connection(("127.0.0.1", stack.nginx_port)), target, headers)


def straight_to_gunicorn(stack: LocalTopology, target: str) -> tuple[int, bytes]:
    """What a client reaching gunicorn without nginx (the Fargate tasks) sees."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(str(stack.socket_path))
    return raw_get(conn, target)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=12).map(lambda text: quote(text, safe="")),
        st.binary(max_size=12).map(lambda data: quote_from_bytes(data, safe="")),
        st.integers(min_value=-(10**8), max_value=10**8).map(str),
        st.from_regex(r"[0-9]{1,7}", fullmatch=True),
        st.text(alphabet="0123456789\u00b2\u00b3\u00b9\u0663\u0966+- .eE_x", max_size=8).map(quote),
    )
)
def test_every_points_value_gets_a_200_or_a_400_never_a_500(
    stack: LocalTopology, encoded: str
) -> None:
    status, body = through_nginx(stack, f"/api/v1/tracks/property/waveform?points={encoded}")

    assert status == expected_status(encoded), (encoded, body[:200])
    if status == 400:
        assert json.loads(body)["error"].startswith("points must be")


def test_oversized_and_unicode_digits_are_400_and_not_echoed(stack: LocalTopology) -> None:
    for value in ("%C2%B2", "9" * 5000, "%D9%A3", "%EF%BC%91%EF%BC%96", "0" * 5 + "16", ""):
        status, body = through_nginx(stack, f"/api/v1/tracks/x/waveform?points={value}")
        assert status == 400, value[:20]
        assert len(body) < 200


def test_a_failed_requests_metric_label_is_bounded(redis_server: RedisServer) -> None:
    app = build_application(
        load_settings({"REDIS_PORT": str(redis_server.port)}), log_stream=io.StringIO()
    )

    def broken_origin(track_id: str, points: int) -> bytes:
        raise RuntimeError("origin failed")

    app.render = broken_origin
    statuses = {call(app, f"/api/v1/tracks/t{uuid.uuid4().hex}/waveform")[0] for _ in range(20)}
    statuses |= {call(app, f"/{uuid.uuid4().hex}")[0] for _ in range(20)}

    routes = set(re.findall(r'route="([^"]*)"', app.metrics.render().decode()))
    assert statuses == {500, 404}
    assert routes == {WAVEFORM_ROUTE, "unmatched"}


def test_metrics_are_served_on_their_own_port_under_no_public_spelling(
    stack: LocalTopology,
) -> None:
    for target in METRICS_SPELLINGS:
        for name, answer in (("nginx", through_nginx), ("gunicorn", straight_to_gunicorn)):
            status, body = answer(stack, target)
            assert 400 <= status < 500, (name, target, status)
            assert b"prostudio_http_requests" not in body, (name, target)

    status, _, body = stack.scrape()
    assert status == 200
    assert b"prostudio_http_requests" in body


def test_readiness_tells_the_public_a_status_and_logs_the_reason(stack: LocalTopology) -> None:
    stack.stop_redis()
    try:
        status, _, body = stack.get("/health/ready")
    finally:
        stack.start_redis()

    assert status == 503
    assert json.loads(body) == {"status": "unavailable", "redis": "down"}
    wait_until(
        lambda: '"event": "not_ready"' in stack.log_path("gunicorn").read_text(),
        what="the reason in the log",
    )
    wait_until(lambda: stack.get("/health/ready")[0] == 200, what="readiness after the outage")


def test_nginx_marks_every_answer_nosniff(stack: LocalTopology) -> None:
    for target, expected in (
        ("/health", 200),
        ("/static/waveform-sample.json", 200),
        ("/static/missing", 404),
        ("/api/v1/tracks/x/waveform?points=0", 400),
    ):
        connection = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=5)
        connection.request("GET", target)
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == expected, target
        assert response.getheader("X-Content-Type-Options") == "nosniff", target


def statuses_for(stack: LocalTopology, client: str | None, count: int) -> list[int]:
    """`count` requests on one keep-alive connection, as one client behind the ALB."""
    headers = {"X-Forwarded-For": client} if client else {}
    connection = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=5)
    found = []
    for _ in range(count):
        connection.request("GET", "/health", headers=headers)
        response = connection.getresponse()
        response.read()
        found.append(response.status)
    connection.close()
    return found


def test_nginx_limits_each_clients_request_rate(stack: LocalTopology) -> None:
    flood = statuses_for(stack, "203.0.113.50", 400)
    other = statuses_for(stack, "198.51.100.7", 20)
    local = statuses_for(stack, None, 400)

    assert 429 in flood and flood[0] == 200
    assert set(flood) == {200, 429}
    assert set(other) == {200}
    assert set(local) == {200}


def test_nginx_limits_each_clients_connections(tmp_path: Path) -> None:
    # Given a service whose every miss holds its worker until the test opens the gate
    gate = tmp_path / "gate"
    slow = local_service(
        tmp_path,
        app="failing_apps:slow_requests()",
        extra_env={"PYTHONPATH": TESTS_DIR, "SLOW_REQUESTS_GATE": str(gate)},
    )
    slow.start()
    try:

        def request(number: int) -> int:
            target = f"/api/v1/tracks/slow{number}-{uuid.uuid4().hex[:8]}/waveform"
            return through_nginx(slow, target, "X-Forwarded-For: 192.0.2.77\r\n")[0]

        # When one client opens more connections at once than nginx allows it, all held open
        with ThreadPoolExecutor(max_workers=CONNECTIONS_TRIED) as pool:
            pending = [pool.submit(request, number) for number in range(CONNECTIONS_TRIED)]
            try:
                wait_until(
                    lambda: (
                        sum(future.done() for future in pending)
                        >= CONNECTIONS_TRIED - PER_CLIENT_CONNECTIONS
                    ),
                    what="nginx to refuse the connections above the client's limit",
                )
            finally:
                gate.touch()
            statuses = [future.result() for future in pending]
        # Then the surplus is refused with 429 while another client is served
        other = through_nginx(slow, "/health", "X-Forwarded-For: 192.0.2.78\r\n")[0]
    finally:
        gate.touch()
        slow.stop()

    assert statuses.count(429) >= CONNECTIONS_TRIED - PER_CLIENT_CONNECTIONS
    assert set(statuses) == {200, 429}
    assert other == 200
