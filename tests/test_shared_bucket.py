"""Unit tests of the shared bucket (``step`` and its Lua twin), with an injected clock."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from benchmarks.redis_server import RedisServer
from target_gorgias.errors import ConfigError
from target_gorgias.pacer import ADDITIVE_STEP, Pacer, WaitClock
from target_gorgias.settings import load_settings
from target_gorgias.shared_bucket import LEASE_TTL, RedisStore, account_key, step

CAP, RATE = 10.0, 5.0  # 10 per 2 s
Op = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.fixture(params=["python", "redis"])
def bucket(request, redis_url) -> Op:
    """One bucket, driven as ``bucket(member, op, now, arg=0)`` by ``step`` or by Redis' Lua."""
    if request.param == "python":
        state: dict[str, Any] = {}
        return lambda member, op, now, arg=0.0: step(state, now, member, op, CAP, RATE, arg)
    store = RedisStore(redis_url, f"unit-{request.node.name}")
    store._client.delete(store.key)
    return lambda member, op, now, arg=0.0: store.run(member, op, CAP, RATE, arg, now=now)


def hungry(bucket: Op, members: list[str], start: float, seconds: float,
           idle: tuple[str, ...] = ()) -> Counter[str]:
    """Each member asks again as soon as the bucket says; ``idle`` ones only renew, each 1 s."""
    next_at = dict.fromkeys(members, start)
    for m in idle:
        next_at[m] = start
    got: Counter[str] = Counter()
    while True:
        member = min(next_at, key=lambda m: next_at[m])
        now = next_at[member]
        if now > start + seconds:
            return got
        if member in idle:
            bucket(member, "renew", now)
            next_at[member] = now + 1.0
            continue
        result = bucket(member, "acquire", now)
        if result["granted"]:
            got[member] += 1
            next_at[member] = now + 0.001
        else:
            assert result["delay"] > 0
            next_at[member] = now + result["delay"] + 1e-6


def test_lone_run_gets_burst_then_the_full_rate(bucket):
    got = hungry(bucket, ["a"], 1000.0, 10.0)
    # capacity less one safety slot, then RATE per second
    assert got["a"] == pytest.approx(CAP - 1 + RATE * 10, abs=1)


def test_two_hungry_runs_split_the_rate_fairly_and_use_all_of_it(bucket):
    got = hungry(bucket, ["a", "b"], 1000.0, 20.0)
    total = got["a"] + got["b"]
    assert total == pytest.approx(CAP - 1 + RATE * 20, abs=2)
    assert min(got.values()) >= 0.45 * total, got


def test_four_runs_none_starves(bucket):
    got = hungry(bucket, ["a", "b", "c", "d"], 1000.0, 20.0)
    total = sum(got.values())
    assert total == pytest.approx(CAP - 1 + RATE * 20, abs=2)
    assert min(got.values()) >= 0.2 * total, got


def test_idle_run_does_not_hold_back_a_busy_one(bucket):
    got = hungry(bucket, ["a"], 1000.0, 20.0, idle=("b",))
    assert got["a"] >= 0.95 * (CAP - 1 + RATE * 20), got


def test_dead_run_lease_expires(bucket):
    assert bucket("a", "acquire", 1000.0)["members"] == 1
    assert bucket("b", "acquire", 1000.1)["members"] == 2
    # b dies (no renew, no leave): it counts until its lease is LEASE_TTL old
    assert bucket("a", "renew", 1000.1 + LEASE_TTL - 0.05)["members"] == 2
    assert bucket("a", "renew", 1000.1 + LEASE_TTL + 0.05)["members"] == 1


def test_leave_frees_the_share_at_once(bucket):
    bucket("a", "renew", 1000.0)
    bucket("b", "renew", 1000.0)
    assert bucket("b", "leave", 1000.5)["members"] == 1
    assert bucket("a", "renew", 1000.6)["members"] == 1


def test_pause_holds_every_run_and_fills_the_bucket(bucket):
    bucket("a", "acquire", 1000.0)
    bucket("a", "pause", 1000.0, 2.0)
    denied = bucket("b", "acquire", 1000.5)
    assert not denied["granted"] and denied["delay"] == pytest.approx(1.5, abs=1e-6)
    assert not bucket("a", "acquire", 1001.9)["granted"]
    # after the pause the bucket (full at 1000.0) has leaked 2 s x RATE = 10 units
    assert bucket("b", "acquire", 1002.01)["granted"]


def test_observed_use_is_adopted(bucket):
    bucket("a", "acquire", 1000.0)
    result = bucket("a", "observe", 1000.0, 8.0)
    assert result["level"] == pytest.approx(8.0)
    assert bucket("a", "acquire", 1000.0)["granted"]  # 9 of 9 usable slots
    denied = bucket("a", "acquire", 1000.0)
    assert not denied["granted"] and denied["delay"] == pytest.approx(1 / RATE)


def test_clock_going_backwards_does_not_refill(bucket):
    for _ in range(9):
        assert bucket("a", "acquire", 1000.0)["granted"]
    assert not bucket("a", "acquire", 990.0)["granted"]


def test_wait_clock_counts_overlapping_waits_once():
    now = [0.0]
    clock = WaitClock(lambda: now[0])
    clock.begin()
    now[0] = 1.0
    clock.begin()  # a second thread waits too
    now[0] = 3.0
    clock.end()
    now[0] = 4.0
    clock.end()
    now[0] = 10.0
    assert clock.seconds == pytest.approx(4.0)


def test_pacer_waited_is_wall_clock_across_threads():
    pacer = Pacer(2, 0.5)  # 2 slots, 4 per s: 2 threads go at once, then 1 each 0.25 s
    threads = [threading.Thread(target=pacer.acquire) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # the two waiting threads waited 0.25 s and 0.5 s: a sum would say 0.75 s
    assert 0.4 < pacer.waited <= min(elapsed + 0.01, 0.65)


def test_pacer_slow_start_then_multiplicative_decrease_additive_increase():
    now = [0.0]
    pacer = Pacer(20, 2.0, clock=lambda: now[0])  # 19 usable slots at most
    assert pacer.usable == 2
    for _ in range(5):
        pacer.acquire()  # never waits: each unit taken makes room for one more
    assert pacer.usable == 7
    pacer.pause(0.1)
    assert pacer.usable == pytest.approx(3.5)
    pacer.pause(0.1)  # same congestion event: no second halving
    assert pacer.usable == pytest.approx(3.5)
    now[0] = 100.0
    for _ in range(3):
        pacer.acquire()
    assert pacer.usable == pytest.approx(3.5 + 3 * ADDITIVE_STEP)
    for _ in range(500):
        now[0] += 1.0
        pacer.acquire()
    assert pacer.usable == 19


def test_pacer_leaves_slow_start_when_the_header_shows_others():
    now = [0.0]
    pacer = Pacer(20, 2.0, clock=lambda: now[0])
    pacer.acquire()
    pacer.observe("6/20")  # we sent 1; Gorgias counted 6
    assert pacer.level == 6
    now[0] = 10.0
    pacer.acquire()
    assert pacer.usable == pytest.approx(3 + ADDITIVE_STEP)


def test_account_key_is_per_account_and_holds_no_secret():
    key = account_key("https://acme.gorgias.com", "basic", "a@example.com")
    assert key == account_key("https://ACME.gorgias.com/", "basic", "A@example.com")
    assert key != account_key("https://other.gorgias.com", "basic", "a@example.com")
    assert key != account_key("https://acme.gorgias.com", "basic", "b@example.com")
    assert len(key) == 24 and "example" not in key


BASE = {"api_url": "http://127.0.0.1:9", "email": "a@example.com", "api_key": "k3y"}


@pytest.mark.parametrize("value", ["local", "none", "redis://10.0.0.5:6379/2",
                                   "rediss://:pw@redis.example.com:6380/0"])
def test_rate_limit_store_accepts(value):
    assert load_settings({**BASE, "rate_limit_store": value}).rate_limit_store == value


def test_rate_limit_store_default_and_errors():
    assert load_settings(BASE).rate_limit_store == "local"
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, "rate_limit_store": "memcached://u:s3cret@h/0"})
    assert "rate_limit_store" in str(info.value) and "s3cret" not in str(info.value)
