"""The follow against real redis-servers: a live writer, a killed subscription, a restart."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from copy_engine import RedisCopier
from copy_follow import Follower, SourceReset, follow
from copy_state import CopySettings, PreconditionError
from copy_support import MemoryStore
from copy_testdata import dump_keyspace, populate_all_types, populate_strings
from test_redis_copy_engine import assert_same_keyspace

from devtools.processes import ManagedProcess
from devtools.redis_servers import RedisServer, start_redis, wait_for_redis


class Run:
    """follow() in a thread, with its status lines and a stop switch."""

    def __init__(
        self,
        source: redis.Redis,
        target: redis.Redis,
        labels: tuple[str, str],
        *,
        accept_reset: bool = False,
    ) -> None:
        self.accept_reset = accept_reset
        self.stopping = threading.Event()
        self.statuses: list[dict[str, Any]] = []
        self.report: dict[str, Any] = {}
        self.error: BaseException | None = None
        copier = RedisCopier(
            source,
            target,
            CopySettings(scan_count=50),
            source_label=labels[0],
            target_label=labels[1],
        )
        store = MemoryStore()
        state = copier.start()
        store.save(state.to_dict())
        self._thread = threading.Thread(
            target=self._run, args=(copier, state, store, source, target), daemon=True
        )
        self._thread.start()

    def _run(self, *args: Any) -> None:
        try:
            self.report = follow(
                *args,
                stop=self.stopping.is_set,
                status=self.statuses.append,
                accept_reset=self.accept_reset,
            )
        except BaseException as error:
            self.error = error

    def wait_for(self, state: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(status["state"] == state for status in self.statuses):
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"never reached {state}: {self.statuses}"
            time.sleep(0.01)

    def stop(self) -> dict[str, Any]:
        self.stopping.set()
        self._thread.join(120)
        assert self.error is None, self.error
        return self.report


class Writer(threading.Thread):
    """Changes the source of every type: writes, deletes, TTL changes, renewals, new keys."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self._client = client
        self.halt = threading.Event()
        self.rounds = 0

    def run(self) -> None:
        rng = random.Random(7)
        client = self._client
        while not self.halt.is_set():
            self.rounds += 1
            n = self.rounds
            pipe = client.pipeline(transaction=False)
            pipe.set(f"k:{rng.randrange(3000)}", f"changed-{n}")
            pipe.set(f"new:{n}", n, px=rng.choice([None, 600_000]))
            pipe.delete(f"k:{rng.randrange(3000)}")
            pipe.expire(f"k:{rng.randrange(3000)}", rng.randrange(100, 10_000))
            pipe.persist(f"k:{rng.randrange(3000)}")
            # A TTL renewed again and again while the copy runs (RedisShake #981).
            pipe.set("renewed", n, px=2000)
            pipe.hset("hash:small", f"f{n % 50}", n)
            pipe.rpush("list:small", n)
            pipe.sadd("set:ints", n)
            pipe.zadd("zset:small", {f"m{n % 40}": n})
            pipe.xadd("stream:small", {"n": n})
            pipe.set(f"short:{n}", n, px=50)
            pipe.execute()
            time.sleep(0.002)


def test_follow_converges_against_a_live_writer_key_by_key(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
) -> None:
    # Given a source that keeps changing through the copy and the follow
    populate_all_types(source, big=False)
    populate_strings(source, 3000)
    writer = Writer(source_server.client())
    writer.start()
    labels = (source_server.label, target_server.label)
    run = Run(source_server.client(), target_server.client(), labels)

    # When the follow runs for a while, the writer stops, and the follow is stopped
    run.wait_for("following")
    time.sleep(2)
    writer.halt.set()
    writer.join()
    time.sleep(0.3)
    report = run.stop()

    # Then the target equals the source, checked key by key here, and the report says so
    assert writer.rounds > 100
    assert run.statuses[0]["state"] == "copying"
    assert {"following", "draining", "done"} <= {s["state"] for s in run.statuses}
    assert_same_keyspace(source, target)
    assert report["ok"] is True, str(report)
    assert report["applied"] > 0
    assert report["lag_keys"] == 0
    flags = source.config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert "K" in str(flags)


def restart(server: RedisServer) -> None:
    """Stop the server and start it again on the same port (its data is gone: no persistence)."""
    command = [str(part) for part in server.process.popen.args]
    server.stop()
    server.process = ManagedProcess("redis-server", command, log=server.process.log)
    wait_for_redis(server.process, server.port, password=server.password)


@pytest.fixture
def own_source(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "own-source")
    yield server
    server.stop()


def test_a_killed_subscription_and_an_accepted_restarted_source_heal_and_converge(
    own_source: RedisServer, target: redis.Redis, target_server: RedisServer
) -> None:
    source = own_source.client()
    # Enough keys that the first resync is still comparing when the source restarts
    populate_strings(source, 20_000)
    labels = (own_source.label, target_server.label)
    run = Run(own_source.client(), target_server.client(), labels, accept_reset=True)
    run.wait_for("following")

    # When the subscription is killed while keys change
    source.client_kill_filter(_type="pubsub")
    for index in range(50):
        source.set(f"during-kill:{index}", index)
    source.delete("k:1", "k:2")
    deadline = time.monotonic() + 30
    while run.statuses[-1]["resyncs"] < 1 and time.monotonic() < deadline:
        source.set("poke", time.time())
        time.sleep(0.2)

    # And the source restarts (empty) and is written again
    restart(own_source)
    source = own_source.client()
    time.sleep(0.5)
    populate_strings(source, 300, prefix="after-restart")
    # (the second resync has ended once the follow reports following again after it)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        run.statuses[-1]["resyncs"] >= 2 and run.statuses[-1]["state"] == "following"
    ):
        time.sleep(0.2)
    following_again = run.statuses[-1]["state"] == "following"
    report = run.stop()

    # Then both losses were resynced, the follow says it follows again, and the target holds
    # exactly the restarted source's keys
    assert report["resyncs"] >= 2, run.statuses
    assert following_again, run.statuses[-3:]
    assert report["ok"] is True, str(report)
    assert dump_keyspace(target).keys() == dump_keyspace(source).keys()
    assert target.get("k:5") is None
    assert target.get("after-restart:7") == b"value-7"
    assert_same_keyspace(source, target)


def test_a_flushed_source_stops_the_follow_and_the_target_keeps_its_keys(
    own_source: RedisServer, target: redis.Redis, target_server: RedisServer
) -> None:
    # Given a follow of a source of 2,000 keys
    source = own_source.client()
    populate_strings(source, 2000)
    run = Run(own_source.client(), target_server.client(), (own_source.label, target_server.label))
    run.wait_for("following")
    before = dump_keyspace(target)

    # When the source is flushed (no per-key event) and written again a little
    source.flushall()
    populate_strings(source, 20, prefix="after-flush")
    deadline = time.monotonic() + 30
    while run.error is None and time.monotonic() < deadline:
        time.sleep(0.1)

    # Then the follow stopped with one line saying so, and the target is as it was
    assert isinstance(run.error, SourceReset), run.statuses[-3:]
    assert "key(s) where it had 2000 (flushed or restarted?)" in str(run.error)
    assert "\n" not in str(run.error)
    after = dump_keyspace(target)
    assert len(before) == 2000
    assert {key: after.get(key) for key in before} == before


def test_a_source_that_refuses_config_set_is_refused_with_the_setting(
    tmp_path: Path, target: redis.Redis, target_server: RedisServer
) -> None:
    locked = start_redis(tmp_path / "locked", extra_args=("--rename-command", "CONFIG", ""))
    try:
        copier = RedisCopier(
            locked.client(),
            target_server.client(),
            CopySettings(),
            source_label=locked.label,
            target_label=target_server.label,
        )
        state = copier.start()
        with pytest.raises(
            PreconditionError,
            match=r"set notify-keyspace-events to KA .*ElastiCache parameter group",
        ):
            follow(copier, state, MemoryStore(), locked.client(), target_server.client())
        assert target.dbsize() == 0
    finally:
        locked.stop()


def test_a_source_that_refuses_config_but_publishes_is_followed(
    tmp_path: Path, target: redis.Redis, target_server: RedisServer
) -> None:
    """ElastiCache refuses CONFIG; its parameter group sets the notifications. The follow
    proves the feed with a probe key of its own and follows, leaving no probe key behind."""
    managed = start_redis(
        tmp_path / "managed",
        extra_args=("--rename-command", "CONFIG", "", "--notify-keyspace-events", "KA"),
    )
    try:
        source = managed.client()
        populate_strings(source, 300)
        run = Run(source, target_server.client(), (managed.label, target_server.label))
        run.wait_for("following")
        source.set("changed", "while following")
        source.delete("k:7")
        report = run.stop()
        assert report["ok"] is True, report
        assert target.get("changed") == b"while following"
        assert target.get("k:7") is None
        assert not source.keys("prostudio:follow-probe:*")
        assert not target.keys("prostudio:follow-probe:*")
        assert_same_keyspace(source, target)
    finally:
        managed.stop()


class SwitchedBox(threading.Thread):
    """A box already switched to the target: it writes there directly, as the service does
    (SET with a TTL), to keys the source's writer also changes and to keys of its own."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self._client = client
        self.halt = threading.Event()
        self.written: dict[str, str] = {}

    def run(self) -> None:
        rng = random.Random(11)
        n = 0
        while not self.halt.is_set():
            n += 1
            for key in (f"k:{rng.randrange(2000)}", f"box:{n}"):
                value = f"from-the-switched-box-{n}"
                self._client.set(key, value, ex=300)
                self.written[key] = value
            time.sleep(0.002)


def test_writes_of_a_box_switched_to_the_target_are_kept_and_not_counted_as_differences(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
) -> None:
    # Given a follow of a live source, and one box switched to the target while the other
    # still writes the source
    populate_strings(source, 3000)
    writer = Writer(source_server.client())
    writer.start()
    run = Run(source_server.client(), target_server.client(), (source_server.label, "target"))
    run.wait_for("following")
    box = SwitchedBox(target_server.client())
    box.start()
    time.sleep(1.5)

    # When the second box switches too (the source has no writers left) and the follow stops
    # while the switched boxes keep writing the target
    writer.halt.set()
    writer.join()
    time.sleep(0.5)
    last_direct = {f"k:{index}": f"direct-{index}" for index in range(2000, 2100)}
    for key, value in last_direct.items():
        target.set(key, value, ex=300)
    report = run.stop()
    box.halt.set()
    box.join()

    # Then every source key is on the target unless the box wrote that key there, nothing is
    # on the target that neither side wrote, and the box's last writes were not overwritten
    assert_same_keyspace(
        source, target, written_on_target={key.encode() for key in [*box.written, *last_direct]}
    )
    assert {key: target.get(key) for key in last_direct} == {
        key: value.encode() for key, value in last_direct.items()
    }
    assert len(box.written) > 100
    assert report["ok"] is True, str(report)
    assert 0 < report["superseded"] <= report["written_on_target"]
    assert report["mismatched"] == 0


def test_a_target_write_announced_only_after_the_second_read_is_not_a_mismatch(
    source: redis.Redis, source_server: RedisServer, target_server: RedisServer
) -> None:
    # Given a copied keyspace, and a box's write on the target whose announcement reaches the
    # follow only after the verifier has settled once and read the key again (a write that
    # lands between those two on a busy machine)
    populate_strings(source, 50)
    engine = RedisCopier(
        source_server.client(),
        target_server.client(),
        CopySettings(verify="none"),
        source_label=source_server.label,
        target_label=target_server.label,
    )
    store = MemoryStore()
    state = engine.start()
    engine.advance(state, store)
    target_server.client().set("k:7", "from-the-switched-box", ex=300)
    written: set[bytes] = set()
    announcements = iter([(), (b"k:7",)])

    def settle() -> None:
        written.update(next(announcements, ()))

    # When the follow's final verification runs
    state.phase, state.verify, state.verify_cursor = "verify", "full", 0
    engine.verifier(settle=settle, written_on_target=written).run(
        state, store, lambda s, st: st.save(s.to_dict())
    )

    # Then the key counts as superseded by the box, not as a difference
    report = state.report()
    assert (report["mismatched"], report["superseded"]) == (0, 1), report


def test_a_source_key_deleted_on_the_target_during_the_follow_is_a_mismatch(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
) -> None:
    # Given a follow whose target gets a write of its own that is not newer data: a DEL
    populate_strings(source, 500)
    run = Run(source_server.client(), target_server.client(), (source_server.label, "target"))
    run.wait_for("following")
    target.delete("k:7")
    time.sleep(0.3)

    # When the follow stops
    report = run.stop()

    # Then the key the source still has is reported missing, and the run is not ok
    assert target.get("k:7") is None
    assert source.get("k:7") == b"value-7"
    assert report["ok"] is False
    assert report["mismatched"] == 1
    assert "b'k:7': missing on target" in report["mismatches"][0]


@pytest.fixture
def follower(source_server: RedisServer, target_server: RedisServer) -> Iterator[Follower]:
    """A follower past its copy, tracking the target's own writes, driven step by step."""
    copier = RedisCopier(
        source_server.client(),
        target_server.client(),
        CopySettings(),
        source_label=source_server.label,
        target_label=target_server.label,
    )
    follower = Follower(copier, source_server.client(), target_server.client())
    follower.start()
    follower.track_target_writes()
    yield follower
    follower.close()


def test_a_source_change_seen_before_a_target_write_does_not_overwrite_it(
    source: redis.Redis, target: redis.Redis, follower: Follower
) -> None:
    # When the unswitched box writes a key on the source and then a switched box writes
    # the same key on the target, before the follower applies anything
    source.set("shared", "older, on the source", ex=300)
    source.set("source-only", "on the source", ex=300)
    target.set("shared", "newer, on the target", ex=300)
    time.sleep(0.3)
    follower.step()

    # Then the newer target write stands, and the other change is applied
    assert target.get("shared") == b"newer, on the target"
    assert target.get("source-only") == b"on the source"
    assert follower.written_on_target == {b"shared"}

    # And a later source change is applied over it
    source.set("shared", "newest, on the source", ex=300)
    time.sleep(0.3)
    follower.step()
    assert target.get("shared") == b"newest, on the source"


def test_a_resync_keeps_the_target_writes_announced_before_it(
    source: redis.Redis, target: redis.Redis, follower: Follower
) -> None:
    # Given a key applied from the source, then written again by a switched box
    source.set("shared", "on the source", ex=300)
    time.sleep(0.3)
    follower.step()
    assert target.get("shared") == b"on the source"
    target.set("shared", "newer, on the target", ex=300)
    time.sleep(0.3)

    # When the source's subscription is lost before the follower reads that announcement
    source.client_kill_filter(_type="pubsub")
    time.sleep(0.3)
    follower.step()

    # Then the resync's reconciliation left the box's write alone
    assert follower.resyncs == 1
    assert target.get("shared") == b"newer, on the target"
    assert follower.written_on_target == {b"shared"}


def test_a_stop_while_waiting_for_a_source_that_is_down_ends_the_wait_with_a_checkpoint(
    own_source: RedisServer, target: redis.Redis, target_server: RedisServer
) -> None:
    # Given a follow whose source went down and has not come back
    populate_strings(own_source.client(), 500)
    run = Run(own_source.client(), target_server.client(), (own_source.label, target_server.label))
    run.wait_for("following")
    own_source.stop()
    run.wait_for("reconnecting")
    time.sleep(6)

    # When it is asked to stop
    stopped_at = time.monotonic()
    report = run.stop()

    # Then the wait ended at once, saying where, with its state saved, and it kept reporting
    assert time.monotonic() - stopped_at < 10
    assert report["ok"] is False and report["stopped_in"] == "reconnecting"
    waiting = [s for s in run.statuses if s["state"] == "reconnecting"]
    assert len(waiting) >= 2, run.statuses
    assert target.dbsize() == 500
