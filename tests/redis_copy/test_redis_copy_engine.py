"""The copy engine against a real plain source and a real TLS + requirepass target."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Collection
from typing import Any

import copy_wire
import pytest
import redis
from copy_clients import make_client
from copy_engine import RedisCopier
from copy_preflight import ServerFacts, check_preconditions, parse_version
from copy_state import CopyError, CopySettings, CopyState, PreconditionError
from copy_support import MemoryStore, SimulatedCrash
from copy_testdata import (
    BIG_HASH_FIELDS,
    BINARY_KEY,
    LONG_STREAM_ENTRIES,
    dump_keyspace,
    populate_all_types,
    populate_strings,
)
from redis._parsers import _RESP2Parser

from devtools.redis_servers import RedisServer, free_port


def copier(
    source_server: RedisServer,
    target_server: RedisServer,
    source: redis.Redis | None = None,
    target: redis.Redis | None = None,
    **settings: Any,
) -> RedisCopier:
    return RedisCopier(
        source or source_server.client(),
        target or target_server.client(),
        CopySettings(**settings),
        source_label=source_server.label,
        target_label=target_server.label,
    )


def run_copy(engine: RedisCopier, store: MemoryStore, **kwargs: Any) -> dict[str, Any]:
    state = engine.start()
    store.save(state.to_dict())
    engine.advance(state, store, **kwargs)
    return state.report()


def assert_same_keyspace(
    source: redis.Redis, target: redis.Redis, *, written_on_target: Collection[bytes] = ()
) -> None:
    """Key by key, with values and absolute expiries; keys the target's own clients wrote
    are left out."""
    expected = dump_keyspace(source)
    copied = dump_keyspace(target)
    for key in written_on_target:
        expected.pop(key, None)
        copied.pop(key, None)
    # The two dumps are taken one after the other: a key whose absolute expiry falls between
    # the first dump's start and the second's end may be on one side only, and rightly so.
    dumped_by_ms = int(source.execute_command("TIME")[0]) * 1000 + 1000
    for only_on, side in ((expected, copied), (copied, expected)):
        for key in only_on.keys() - side.keys():
            expiry = only_on[key][2]
            if 0 < expiry <= dumped_by_ms:
                del only_on[key]
    assert copied.keys() == expected.keys()
    for key, (kind, value, expiry) in expected.items():
        copied_kind, copied_value, copied_expiry = copied[key]
        assert (copied_kind, copied_value) == (kind, value), key
        if expiry < 0:
            assert copied_expiry == expiry, key
        else:
            assert abs(copied_expiry - expiry) <= 5, (key, expiry, copied_expiry)


def test_copies_every_type_with_ttls_binary_names_and_big_keys(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given every type, TTLs, binary names, a 100k-field hash and a long stream
    populate_all_types(source)
    assert source.hlen("hash:big") == BIG_HASH_FIELDS
    assert source.xlen("stream:long") == LONG_STREAM_ENTRIES
    total = source.dbsize()

    # When copying with full verification
    report = run_copy(copier(source_server, target_server, scan_count=50), memory_store)

    # Then every key arrives with its type, value and absolute expiry
    assert report["ok"] is True
    assert report["scanned"] == report["copied"] == total
    assert report["skipped"] == report["expired"] == report["mismatched"] == 0
    assert report["verified"] == total
    assert target.get(BINARY_KEY) == b"\x00\x01binary"
    assert target.object("encoding", "hash:big") == b"hashtable"
    assert_same_keyspace(source, target)
    saved = memory_store.load()
    assert saved is not None
    assert saved["phase"] == "done"


def test_ttls_do_not_stretch_by_the_copy_time(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given keys with TTLs and a copy slowed down between batches
    for index in range(20):
        source.set(f"slow:{index}", index, px=120_000)
    expiries = {key: source.execute_command("PEXPIRETIME", key) for key in source.scan_iter()}

    # When the copy takes a noticeable time
    report = run_copy(
        copier(source_server, target_server, scan_count=2),
        memory_store,
        progress=lambda state: time.sleep(0.02),
    )

    # Then the absolute expiries on the target are the source's, not shifted by the copy time
    assert report["ok"] is True
    for key, expiry in expiries.items():
        assert abs(target.execute_command("PEXPIRETIME", key) - expiry) <= 5


class ClockAhead(redis.Redis):
    """A real client whose TIME reads 5 s ahead, as a target with a skewed clock would."""

    def time(self, *args: Any, **kwargs: Any) -> Any:
        seconds, micros = super().time(*args, **kwargs)
        return seconds + 5, micros


def test_expiries_follow_a_skewed_target_clock(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given a target whose clock reads 5 s ahead of the source's
    source.set("expiring", "v", px=300_000)
    source_expiry = source.execute_command("PEXPIRETIME", "expiring")
    skewed = ClockAhead(
        port=target_server.port,
        password=target_server.password,
        ssl=True,
        ssl_ca_certs=str(target_server.ca_cert),
    )

    # When copying through it
    report = run_copy(copier(source_server, target_server, target=skewed), memory_store)

    # Then the absolute expiry is moved by the skew, so the key dies at the same moment
    assert report["ok"] is True
    shift = target.execute_command("PEXPIRETIME", "expiring") - source_expiry
    assert abs(shift - 5000) <= 50


def test_keys_expiring_mid_copy_are_counted_and_survivors_arrive(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given persistent keys and many keys that expire within the copy's duration
    populate_strings(source, 3000, prefix="keep")
    pipe = source.pipeline(transaction=False)
    for index in range(6000):
        pipe.set(f"short:{index}", index, px=100 + (index * 7) % 1500)
    pipe.execute()

    # When the copy runs slowly enough that expiries happen between SCAN and RESTORE
    report = run_copy(
        copier(source_server, target_server, scan_count=100),
        memory_store,
        progress=lambda state: time.sleep(0.02),
    )

    # Then expired keys are counted, every survivor is on the target, nothing is lost
    assert report["ok"] is True
    assert report["expired"] > 0
    assert report["scanned"] == report["copied"] + report["skipped"] + report["expired"]
    assert report["copied"] >= 3000
    assert all(target.exists(f"keep:{index}") for index in range(0, 3000, 97))
    kept = sum(1 for _ in target.scan_iter(match="keep:*", count=1000))
    assert kept == 3000
    for key in source.scan_iter(count=1000):
        remaining = source.pttl(key)
        if remaining > 1000:
            assert target.exists(key), key


@pytest.mark.parametrize("policy", ["skip", "replace"])
def test_existing_keys_follow_the_policy(
    policy: str,
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given source keys, two of which already exist on the target with other values
    populate_strings(source, 50)
    target.set("k:1", "target-own")
    target.set("k:2", "target-own", ex=500)
    target.set("only-on-target", "stays")

    # When copying with the policy
    report = run_copy(copier(source_server, target_server, policy=policy), memory_store)

    # Then skip keeps the target's values (and its own key) and verifies; replace
    # overwrites them, and the key only on the target makes it fail verification
    assert report["scanned"] == 50
    assert target.get("only-on-target") == b"stays"
    assert report["target_only"] == 1
    if policy == "skip":
        assert report["ok"] is True
        assert (report["copied"], report["skipped"]) == (48, 2)
        assert target.get("k:1") == b"target-own"
        assert target.ttl("k:2") > 0
        assert report["kept"] == 3
    else:
        assert report["ok"] is False
        assert report["mismatches"] == [
            "b'only-on-target': only on the target (deleted on the source?)"
        ]
        assert (report["copied"], report["skipped"]) == (50, 0)
        assert target.get("k:1") == b"value-1"
        assert target.ttl("k:2") == -1
    assert target.get("k:3") == b"value-3"


def test_policy_fail_refuses_a_target_that_is_not_empty(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
) -> None:
    populate_strings(source, 10)
    target.set("already", "here")

    with pytest.raises(PreconditionError, match=r"already holds 1 key.*policy is 'fail'"):
        copier(source_server, target_server).start()

    assert target.dbsize() == 1


def test_same_server_is_refused(source: redis.Redis, source_server: RedisServer) -> None:
    populate_strings(source, 5)
    same_by_label = RedisCopier(
        source_server.client(),
        source_server.client(),
        CopySettings(),
        source_label=source_server.label,
        target_label=source_server.label,
    )
    with pytest.raises(PreconditionError, match=r"both 127\.0\.0\.1"):
        same_by_label.start()

    same_by_run_id = RedisCopier(
        source_server.client(),
        source_server.client(host="localhost"),
        CopySettings(policy="replace"),
        source_label=source_server.label,
        target_label=f"localhost:{source_server.port}/0",
    )
    with pytest.raises(PreconditionError, match="same server \\(run_id"):
        same_by_run_id.start()
    assert source.dbsize() == 5


class ReportsServer(redis.Redis):
    """A real client whose INFO server reports other engine fields; nothing else changes."""

    def __init__(self, reported: dict[str, str], **options: Any) -> None:
        super().__init__(**options)
        self.reported = reported

    def info(self, section: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = super().info(section, *args, **kwargs)
        if section == "server":
            result = {**result, **self.reported}
        return result


def reporting_target(target_server: RedisServer, **reported: str) -> ReportsServer:
    return ReportsServer(
        reported,
        host="127.0.0.1",
        port=target_server.port,
        password=target_server.password,
        ssl=True,
        ssl_ca_certs=str(target_server.ca_cert),
    )


def test_target_older_than_source_is_refused(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
) -> None:
    populate_strings(source, 5)
    older_target = reporting_target(target_server, redis_version="6.2.14")
    engine = copier(source_server, target_server, target=older_target)

    with pytest.raises(
        PreconditionError,
        match=r"target runs Redis 6\.2\.14, which cannot RESTORE the source's Redis 7\.0\.\d+ "
        r"DUMP payloads \(RDB version 10, the target reads up to 9\)",
    ):
        engine.start()
    assert target.dbsize() == 0


def test_a_valkey_target_takes_a_redis_7_source(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given a target that reports itself as Valkey 8.0 (redis_version stays 7.2.4 there)
    populate_all_types(source, big=False)
    valkey = reporting_target(
        target_server, server_name="valkey", valkey_version="8.0.1", redis_version="7.2.4"
    )

    # When copying from the Redis 7.0 source
    report = run_copy(copier(source_server, target_server, target=valkey), memory_store)

    # Then the payloads (RDB 10) are accepted and everything arrives
    assert report["ok"] is True
    assert_same_keyspace(source, target)


def facts(engine: str, version: str) -> ServerFacts:
    return ServerFacts(
        run_id=f"{engine}-{version}",
        engine=engine,
        version=parse_version(version),
        version_text=version,
        used_memory=0,
        dataset_bytes=0,
        maxmemory=0,
        maxmemory_policy="noeviction",
        keys=0,
    )


@pytest.mark.parametrize(
    ("source_engine", "target_engine", "accepted"),
    [
        (("redis", "7.2.4"), ("valkey", "8.0.1"), True),
        (("redis", "7.4.1"), ("valkey", "8.1.0"), False),
        (("redis", "8.0.2"), ("valkey", "7.2.5"), False),
        (("valkey", "8.0.1"), ("redis", "7.2.4"), True),
        (("valkey", "8.0.1"), ("redis", "7.0.15"), False),
        (("valkey", "7.2.5"), ("valkey", "8.1.0"), True),
        (("redis", "7.4.1"), ("redis", "8.0.2"), True),
    ],
)
def test_payload_versions_decide_between_redis_and_valkey(
    source_engine: tuple[str, str], target_engine: tuple[str, str], accepted: bool
) -> None:
    source_facts, target_facts = facts(*source_engine), facts(*target_engine)
    check = lambda: check_preconditions(  # noqa: E731
        source_facts,
        target_facts,
        CopySettings(),
        source_label="old:6379/0",
        target_label="new:6379/0",
        resuming=False,
    )
    if accepted:
        check()
    else:
        with pytest.raises(PreconditionError, match="cannot RESTORE the source's"):
            check()


@pytest.mark.parametrize(
    ("eviction", "message"),
    [
        ("noeviction", "target maxmemory too small"),
        ("allkeys-lru", "maxmemory-policy allkeys-lru would evict copied keys"),
        ("volatile-ttl", "maxmemory-policy volatile-ttl would evict copied keys"),
    ],
)
def test_target_memory_too_small_or_evicting_is_refused(
    eviction: str,
    message: str,
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
) -> None:
    # Given 2 MB of data on the source and a target with only ~256 KiB free
    pipe = source.pipeline(transaction=False)
    for index in range(200):
        pipe.set(f"blob:{index}", "x" * 10_000)
    pipe.execute()
    used = int(target.info("memory")["used_memory"])
    target.config_set("maxmemory", used + 256 * 1024)
    target.config_set("maxmemory-policy", eviction)

    with pytest.raises(PreconditionError, match=message):
        copier(source_server, target_server).start()
    assert target.dbsize() == 0


def test_evicting_policy_with_room_to_spare_is_accepted(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    populate_strings(source, 100)
    target.config_set("maxmemory", 512 * 1024 * 1024)
    target.config_set("maxmemory-policy", "allkeys-lru")

    report = run_copy(copier(source_server, target_server), memory_store)

    assert report["ok"] is True
    assert report["copied"] == 100


def test_unreachable_server_is_a_clear_error(
    source: redis.Redis, source_server: RedisServer, target_server: RedisServer
) -> None:
    port = free_port()
    engine = RedisCopier(
        source_server.client(),
        make_client("127.0.0.1", port, tls=False),
        CopySettings(),
        source_label=source_server.label,
        target_label=f"127.0.0.1:{port}/0",
    )
    with pytest.raises(PreconditionError, match=f"cannot reach target redis at 127.0.0.1:{port}"):
        engine.start()


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_auth_failure_is_a_clear_error(
    password: str | None,
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
) -> None:
    bad_target = target_server.client(password=password)
    engine = copier(source_server, target_server, target=bad_target)

    with pytest.raises(PreconditionError, match=r"target redis at .* rejected the credentials"):
        engine.start()
    assert target.dbsize() == 0


def test_crash_between_restore_and_checkpoint_resumes_without_loss_or_double_count(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
) -> None:
    # Given a copy that dies on its 4th checkpoint write, after RESTOREs it never recorded
    populate_strings(source, 5000)
    crashing = MemoryStore(crash_on_save=4)
    engine = copier(source_server, target_server, scan_count=100, batches_per_checkpoint=5)
    state = engine.start()
    crashing.save(state.to_dict())
    with pytest.raises(SimulatedCrash):
        engine.advance(state, crashing)
    saved = crashing.saved
    assert saved is not None
    assert saved["phase"] == "copy"
    recorded = saved["counts"]["copied"]
    assert 0 < recorded < target.dbsize() < 5000

    # When a new process resumes from the last durable checkpoint
    store = MemoryStore()
    store.saved = saved
    resumed_engine = copier(source_server, target_server, scan_count=100)
    resumed = resumed_engine.resume(saved)
    resumed_engine.advance(resumed, store)
    report = resumed.report()

    # Then every key is there once and counted once
    assert report["ok"] is True
    assert report["scanned"] == report["copied"] == 5000
    assert target.dbsize() == 5000


def _stop_after(looks: int) -> Callable[[], bool]:
    seen = itertools.count(1)
    return lambda: next(seen) > looks


def test_a_stopped_copy_resumes_in_later_runs(
    source: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given a stop request that each run sees after three looks (as a signal would arrive)
    populate_strings(source, 2000)
    engine = copier(source_server, target_server, scan_count=100)
    state = engine.start()
    runs = 0
    while not state.done:
        runs += 1
        engine.advance(state, memory_store, stop=_stop_after(3))
        saved = memory_store.load()
        assert saved is not None
        state = CopyState.from_dict(saved)
        assert runs < 200

    # Then the copy took several runs, each resuming from the checkpoint, and lost nothing
    assert runs > 3
    report = state.report()
    assert report["ok"] is True
    assert report["copied"] == report["verified"] == 2000


def test_verification_catches_tampered_keys(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given a copy whose target is tampered with between the copy and its verification
    populate_all_types(source, big=False)
    tampered = False

    def tamper(state: CopyState) -> None:
        nonlocal tampered
        if state.phase == "verify" and not tampered:
            tampered = True
            target.hset("hash:small", "a", "changed")
            target.pexpire("str:plain", 50_000)
            target.delete("bulk:7")
            target.rpush("list:small", "extra")
            # Same bytes, both with a TTL: the absolute expiries differ by minutes either way.
            target.pexpire("str:ttl", 60_000)
            target.expire("set:strings", 7200)

    report = run_copy(copier(source_server, target_server), memory_store, progress=tamper)

    # Then each tampered key is reported and the run is not ok
    assert tampered
    assert report["ok"] is False
    assert report["mismatched"] == 6
    reasons = " ".join(report["mismatches"])
    assert re.search(r"b'str:ttl': ttl: target expires -\d+ ms earlier", reasons)
    assert re.search(r"b'set:strings': ttl: target expires \d+ ms later", reasons)
    assert "b'bulk:7': missing on target" in reasons
    assert "b'str:plain': ttl: source has none" in reasons
    assert "b'hash:small': value differs" in reasons
    assert "b'list:small': value differs" in reasons


def test_sample_verification_checks_a_bounded_sample(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    populate_strings(source, 3000)

    report = run_copy(
        copier(source_server, target_server, verify="sample", sample_size=200), memory_store
    )

    assert report["ok"] is True
    assert 0 < report["verified"] <= 200
    assert report["copied"] == 3000


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(CopyError, match="policy 'merge' is unknown"):
        CopySettings(policy="merge")
    with pytest.raises(CopyError, match="verify mode 'some' is unknown"):
        CopySettings(verify="some")


def test_pure_python_parsing_as_in_the_lambda_bundle(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no hiredis (the Lambda bundle leaves it out) and redis-py's pure-Python parser
    monkeypatch.setattr(copy_wire, "_hiredis_reader", lambda: None)
    pure_source = redis.Redis(
        connection_pool=redis.ConnectionPool(
            port=source_server.port, protocol=2, parser_class=_RESP2Parser
        )
    )
    pure_target = redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=redis.SSLConnection,
            port=target_server.port,
            password=target_server.password,
            ssl_ca_certs=str(target_server.ca_cert),
            protocol=2,
            parser_class=_RESP2Parser,
        )
    )
    populate_all_types(source, big=False)
    target.set("k:existing", "kept")
    source.set("k:existing", "from source")

    # When copying with policy skip, so some RESTOREs come back as BUSYKEY errors
    engine = copier(
        source_server, target_server, source=pure_source, target=pure_target, policy="skip"
    )
    report = run_copy(engine, memory_store)

    # Then the error replies are counted as skips and everything else arrives intact
    assert report["ok"] is True
    assert (report["skipped"], report["kept"]) == (1, 1)
    assert report["copied"] == source.dbsize() - 1
    assert target.get("k:existing") == b"kept"
    target.delete("k:existing")
    source.delete("k:existing")
    assert_same_keyspace(source, target)


def test_stale_target_only_keys_are_caught_across_many_batches(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given a target holding 30 keys the source no longer has, among 500 copied ones
    populate_strings(source, 500)
    for index in range(30):
        target.set(f"stale:{index}", "deleted on the source")

    # When copying with policy replace in small batches (the next batch is always in flight)
    report = run_copy(
        copier(source_server, target_server, policy="replace", scan_count=10), memory_store
    )

    # Then every stale key is a mismatch, and nothing else is
    assert report["ok"] is False
    assert (report["mismatched"], report["target_only"]) == (30, 30)
    assert report["target_verified"] == 530
    assert all("only on the target" in reason for reason in report["mismatches"])
    assert {key for key in target.scan_iter(match="stale:*")} == {
        f"stale:{index}".encode() for index in range(30)
    }


def test_hashtable_sets_and_hashes_verify_by_their_elements_in_any_order(
    source: redis.Redis,
    target: redis.Redis,
    source_server: RedisServer,
    target_server: RedisServer,
    memory_store: MemoryStore,
) -> None:
    # Given hashtable-encoded sets and hashes, with integer, short and compressible members
    members = [f"member:{n}" for n in range(300)] + ["7", "-70000", "z" * 400]
    for name in ("set:a", "set:b"):
        source.sadd(name, *members)
    for name in ("hash:a", "hash:b"):
        source.hset(
            name, mapping={f"field:{n}": f"value:{n}:" + "v" * (n % 90) for n in range(300)}
        )

    def tamper(state: CopyState) -> None:
        if state.phase == "verify" and not target.sismember("set:b", "intruder"):
            target.srem("set:b", "member:5")
            target.sadd("set:b", "intruder")
            target.hset("hash:b", "field:5", "value:X:" + "v" * 5)

    # When they are copied and the target changed in two of them, count and sizes kept
    report = run_copy(copier(source_server, target_server), memory_store, progress=tamper)

    # Then the untouched ones match although their payloads' bytes differ, the changed ones
    # do not
    for key in (b"set:a", b"hash:a"):
        source_payload, target_payload = source.dump(key), target.dump(key)
        assert isinstance(source_payload, bytes) and isinstance(target_payload, bytes)
        assert source_payload[:-10] != target_payload[:-10], key
    assert report["mismatched"] == 2
    assert report["verified"] == 4
    reasons = " ".join(report["mismatches"])
    assert "b'set:b': value differs" in reasons
    assert "b'hash:b': value differs" in reasons
