"""ElastiCache's stand-in: a primary and two replicas with TLS and AUTH, watched by three
Sentinels, behind a primary endpoint that follows a failover."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import threading
from pathlib import Path
from typing import Any

import redis

from devtools.processes import ManagedProcess, find_binary, free_port
from devtools.redis_servers import TlsFiles, make_tls_files
from rehearsal.stands import wait_until

SENTINEL_MASTER = "prostudio"
SENTINEL_QUORUM = 2
SENTINEL_DOWN_AFTER_MS = 1000
SENTINEL_FAILOVER_TIMEOUT_MS = 10_000


class RedisGroup:
    """A primary and two replicas with TLS and AUTH, watched by three Sentinels: the role of
    the ElastiCache replication group of three nodes. Sentinel promotes a replica on failover,
    as ElastiCache does behind its primary endpoint."""

    def __init__(self, workdir: Path, replicas: int = 2, sentinels: int = 3) -> None:
        self.workdir = workdir
        self.password = secrets.token_hex(16)
        self.tls: TlsFiles = make_tls_files(workdir / "tls")
        self.node_ports = [free_port() for _ in range(1 + replicas)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: list[ManagedProcess] = []
        self.sentinels: dict[int, redis.Redis] = {}
        self.sentinels_lock = threading.Lock()

    def _tls_args(self) -> list[str]:
        return [
            "--tls-cert-file", str(self.tls.server_cert),
            "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca_cert),
            "--tls-auth-clients", "no",
            "--tls-replication", "yes",
        ]  # fmt: skip

    def start(self) -> None:
        primary = self.node_ports[0]
        for index, port in enumerate(self.node_ports):
            data = self.workdir / f"node-{port}"
            data.mkdir(parents=True, exist_ok=True)
            command = [
                find_binary("redis-server"),
                "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
                "--save", "", "--appendonly", "no", "--dir", str(data),
                "--requirepass", self.password, "--masterauth", self.password,
                "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lfu",
                # A replica's sync starts at once, not after 5 s of waiting for more replicas.
                "--repl-diskless-sync-delay", "0",
                *self._tls_args(),
            ]  # fmt: skip
            if index:
                command += ["--replicaof", "127.0.0.1", str(primary)]
            self.processes.append(ManagedProcess(f"redis-{port}", command, log=data / "redis.log"))
        for port in self.node_ports:
            wait_until(functools.partial(self._answers, port), f"redis {port}")
        wait_until(self._replicas_in_sync, "replication")
        for port in self.sentinel_ports:
            self._start_sentinel(port, primary)
        for port in self.sentinel_ports:
            wait_until(functools.partial(self._names_master, port), f"sentinel {port}")

    def _start_sentinel(self, port: int, primary: int) -> None:
        directory = self.workdir / f"sentinel-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    "port 0",
                    f"tls-port {port}",
                    f"tls-cert-file {self.tls.server_cert}",
                    f"tls-key-file {self.tls.server_key}",
                    f"tls-ca-cert-file {self.tls.ca_cert}",
                    "tls-auth-clients no",
                    "tls-replication yes",
                    f"dir {directory}",
                    f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} {SENTINEL_QUORUM}",
                    f"sentinel auth-pass {SENTINEL_MASTER} {self.password}",
                    f"sentinel down-after-milliseconds {SENTINEL_MASTER} {SENTINEL_DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {SENTINEL_MASTER} {SENTINEL_FAILOVER_TIMEOUT_MS}",
                    "",
                ]
            )
        )
        command = [find_binary("redis-server"), str(config), "--sentinel"]
        self.processes.append(
            ManagedProcess(f"sentinel-{port}", command, log=directory / "sentinel.log")
        )

    def client(self, port: int, **options: object) -> redis.Redis:
        """A client of one node (or, without a password, of one Sentinel)."""
        settings: dict[str, object] = {
            "host": "127.0.0.1",
            "port": port,
            "password": self.password,
            "ssl": True,
            "ssl_ca_certs": str(self.tls.ca_cert),
            "socket_timeout": 2.0,
            "socket_connect_timeout": 2.0,
        }
        settings.update(options)
        return redis.Redis(**settings)  # type: ignore[arg-type]

    def sentinel(self, port: int) -> redis.Redis:
        """One client per Sentinel, kept: each new client's TLS context costs about 40 ms of
        CPU, and the primary endpoint asks a Sentinel every 0.2 s."""
        with self.sentinels_lock:
            if port not in self.sentinels:
                self.sentinels[port] = self.client(port, password=None)
            return self.sentinels[port]

    def primary_port(self) -> int:
        """The port the Sentinels name as master now."""
        sentinel = self.sentinel(self.sentinel_ports[0])
        address: Any = sentinel.sentinel_get_master_addr_by_name(SENTINEL_MASTER)
        return int(address[1])

    def _answers(self, port: int) -> bool:
        return bool(self.client(port).ping())

    def _replicas_in_sync(self) -> bool:
        info: Any = self.client(self.node_ports[0]).info("replication")
        return int(info.get("connected_slaves", 0)) == len(self.node_ports) - 1

    def _names_master(self, sentinel_port: int) -> bool:
        address: Any = self.sentinel(sentinel_port).sentinel_get_master_addr_by_name(
            SENTINEL_MASTER
        )
        return int(address[1]) == self.node_ports[0]

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            master: Any = self.sentinel(port).sentinel_master(SENTINEL_MASTER)
            if int(master.get("num-other-sentinels", 0)) < len(self.sentinel_ports) - 1:
                return False
        return True

    def failover(self) -> tuple[int, int]:
        """Ask Sentinel to fail the primary over; return (old, new) primary ports."""
        # The Sentinels find each other through the primary (every 2 s): a quorum needs that.
        wait_until(self._sentinels_agree, "sentinels")
        before = self.primary_port()
        self.sentinel(self.sentinel_ports[0]).execute_command("SENTINEL FAILOVER", SENTINEL_MASTER)
        wait_until(lambda: self.primary_port() != before, "failover", timeout=20)
        return before, self.primary_port()

    def service_environment(self) -> dict[str, str]:
        """How a task reaches the group: TLS and an auth token, as in production, with the
        Sentinels in the role of the primary endpoint."""
        return {
            "REDIS_SENTINEL_HOSTS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
            "REDIS_SENTINEL_MASTER": SENTINEL_MASTER,
            "REDIS_TLS": "true",
            "REDIS_TLS_CA_FILE": str(self.tls.ca_cert),
            "REDIS_AUTH_TOKEN": self.password,
        }

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        with self.sentinels_lock:
            for client in self.sentinels.values():
                client.close()
            self.sentinels.clear()


class PrimaryEndpoint:
    """ElastiCache's primary endpoint: a TCP port that always leads to the current master.

    Each new connection is forwarded (TLS passes through untouched) to the master the
    Sentinels name; after a failover, connections to the old master are closed, as ElastiCache
    drops them, and clients reconnect to the new one. The follow's target is this endpoint."""

    def __init__(self, group: RedisGroup) -> None:
        self.group = group
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.links: dict[int, set[asyncio.StreamWriter]] = {}
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(timeout=10)

    async def _serve(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.loop.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                current = await asyncio.to_thread(self.group.primary_port)
                for port in [p for p in self.links if p != current]:
                    for writer in self.links.pop(port):
                        writer.close()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            port = await asyncio.to_thread(self.group.primary_port)
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except Exception:  # noqa: BLE001 - no master reachable: refuse this connection
            writer.close()
            return
        self.links.setdefault(port, set()).update({writer, upstream_writer})
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        self.links.get(port, set()).difference_update({writer, upstream_writer})

    async def _shutdown(self) -> None:
        self.server.close()
        for writers in self.links.values():
            for writer in writers:
                writer.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
