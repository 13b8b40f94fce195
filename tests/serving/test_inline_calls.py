"""Which HTTP policy calls the event loop runs itself (`inline_calls`), and a server that follows it."""

from __future__ import annotations

import http.client
import json
import threading
import time

import numpy as np
import pytest
from serving_support import WEIGHTS, LinearPolicy, infer_body, observations, start_server

from gymserve.policies import Distribution
from gymserve.serving.server import inline_calls
from gymserve.serving.server.inline_calls import (
    INLINE_MAX_BODY,
    INLINE_SECONDS,
    MAX_KEYS,
    STALL_SECONDS,
    WINDOW,
    InlineCalls,
)
from gymserve.serving.server.served_policies import ServedPolicies

KEY = ("oip_infer", "cartpole", None, None)
FAST, LOADED, SLOW = INLINE_SECONDS / 10, INLINE_SECONDS * 2, STALL_SECONDS * 2
LOOP_THREAD = "gymserve-http-loop"


def learned(calls: int = WINDOW, seconds: float = FAST, enabled: bool = True) -> InlineCalls:
    inline = InlineCalls(enabled)
    for _ in range(calls):
        inline.record(KEY, seconds)
    return inline


def test_fast_calls_run_on_the_loop_once_learned():
    assert not learned(calls=WINDOW - 1).inline(KEY, 100)
    assert learned().inline(KEY, 100)
    assert not learned().inline(("oip_infer", "cartpole", "2", None), 100)


def test_slow_calls_large_bodies_and_batching_go_to_the_threads():
    assert not learned(seconds=LOADED).inline(KEY, 100)
    assert not learned().inline(KEY, INLINE_MAX_BODY + 1)
    assert not learned(enabled=False).inline(KEY, 100)


def test_calls_slowed_by_load_now_and_then_stay_on_the_loop():
    inline = learned()
    for _ in range(10 * WINDOW):
        inline.record(KEY, LOADED)
        inline.record(KEY, FAST)
        inline.record(KEY, FAST)
        assert inline.inline(KEY, 100)


def test_a_stalling_call_sends_a_window_of_calls_to_the_threads_and_mixed_ones_never_inline():
    inline = learned()
    inline.record(KEY, SLOW)
    for _ in range(WINDOW - 1):
        assert not inline.inline(KEY, 100)
        inline.record(KEY, FAST)
    inline.record(KEY, FAST)
    assert inline.inline(KEY, 100)
    mixed = learned()
    for _ in range(10 * WINDOW):
        mixed.record(KEY, SLOW)
        mixed.record(KEY, FAST)
        assert not mixed.inline(KEY, 100)


def test_keys_are_bounded_and_the_oldest_is_forgotten():
    inline = learned()
    for number in range(MAX_KEYS):
        inline.record(("oip_infer", "cartpole", str(number), None), FAST)
    assert not inline.inline(KEY, 100)  # forgotten: its next calls go to the threads


class ThreadRecordingPolicy(LinearPolicy):
    """Records the thread each call runs on, and sleeps `seconds` in each."""

    def __init__(self) -> None:
        super().__init__(WEIGHTS[1])
        self.threads: list[str] = []
        self.seconds = 0.0

    def _distribution(self, observations: np.ndarray, state: tuple) -> Distribution:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.seconds)
        return super()._distribution(observations, state)


def infer(address: str, path: str) -> int:
    body = infer_body(observations(1).tolist(), [1, 4])
    connection = http.client.HTTPConnection(*address.split(":"), timeout=30)
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    status = connection.getresponse().status
    connection.close()
    return status


SERVER_INLINE_SECONDS, SERVER_STALL_SECONDS = 0.05, 0.15  # far from what load does to a fast call
SERVER_SLOW = 0.16


@pytest.fixture
def recorders(monkeypatch) -> tuple[ServedPolicies, ThreadRecordingPolicy, ThreadRecordingPolicy]:
    monkeypatch.setattr(inline_calls, "INLINE_SECONDS", SERVER_INLINE_SECONDS)
    monkeypatch.setattr(inline_calls, "STALL_SECONDS", SERVER_STALL_SECONDS)
    fast, slow = ThreadRecordingPolicy(), ThreadRecordingPolicy()
    slow.seconds = SERVER_SLOW
    policies = ServedPolicies()
    policies.add("recorder", 1, fast)
    policies.add("recorder", 2, slow)
    return policies, fast, slow


def test_the_server_runs_fast_calls_on_its_loop_and_keeps_slow_versions_off_it(recorders):
    policies, fast, slow = recorders
    server = start_server(policies, http_address="127.0.0.1:0")
    try:
        for _ in range(2 * WINDOW):
            assert infer(server.http_address, "/v2/models/recorder/versions/1/infer") == 200
            assert infer(server.http_address, "/v2/models/recorder/versions/2/infer") == 200
        assert LOOP_THREAD not in fast.threads[:WINDOW]  # learned on the threads first
        assert fast.threads[WINDOW:] == [LOOP_THREAD] * WINDOW, " ".join(fast.threads)
        assert LOOP_THREAD not in slow.threads  # a slow version of the same policy never stalls the loop
        fast.seconds = SERVER_SLOW  # the policy turns slow: the loop waits for it once, then hands calls off
        before = len(fast.threads)
        for _ in range(WINDOW):
            assert infer(server.http_address, "/v2/models/recorder/versions/1/infer") == 200
        assert fast.threads[before:].count(LOOP_THREAD) == 1
    finally:
        server.stop(grace=0)


def test_a_batching_server_never_runs_calls_on_its_loop(recorders):
    policies, fast, _ = recorders
    server = start_server(
        policies, http_address="127.0.0.1:0", batching_max_size=8, batching_timeout_micros=0
    )
    try:
        for _ in range(2 * WINDOW):
            assert infer(server.http_address, "/v2/models/recorder/versions/1/infer") == 200
        assert len(fast.threads) >= 2 * WINDOW and LOOP_THREAD not in fast.threads
    finally:
        server.stop(grace=0)
