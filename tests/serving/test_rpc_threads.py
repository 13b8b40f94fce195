"""The server's RPC thread pool: every call runs once, callbacks run once, threads stay bounded."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from gymserve.serving.server.rpc_threads import RpcThreads


def _started_threads(prefix: str) -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith(prefix)}


def test_every_call_runs_once_and_its_callbacks_run_once_after_it():
    pool = RpcThreads(4)
    ran, called_back = [], []
    lock = threading.Lock()

    def work(index: int) -> None:
        with lock:
            ran.append(index)

    calls = [pool.submit(work, index) for index in range(2000)]
    for index, call in enumerate(calls):  # many are done already, some are not
        call.add_done_callback(lambda _, index=index: called_back.append((index, index in ran)))
    pool.shutdown()
    assert sorted(ran) == list(range(2000))
    assert sorted(called_back) == [(index, True) for index in range(2000)]


def test_callbacks_added_before_the_call_returns_run_after_it_in_order_and_a_failing_one_is_logged(caplog):
    pool = RpcThreads(1)
    release, order = threading.Event(), []

    def broken_callback(_) -> None:
        order.append("broken")
        raise RuntimeError("callback bug")

    call = pool.submit(lambda: (release.wait(10), order.append("call")))
    call.add_done_callback(lambda _: order.append("first"))
    call.add_done_callback(broken_callback)
    call.add_done_callback(lambda _: order.append("last"))
    assert order == []
    release.set()
    finished = threading.Event()
    pool.submit(finished.set)  # the thread survived the failing callback
    assert finished.wait(10)
    pool.shutdown()
    assert order == ["call", "first", "broken", "last"]
    logged = [entry.fields["error"] for entry in caplog.records if entry.getMessage() == "rpc_callback_error"]
    assert logged == ["RuntimeError: callback bug"]


def test_threads_never_exceed_the_limit_and_calls_beyond_it_wait_for_a_free_one():
    pool = RpcThreads(3, thread_name_prefix="limit-rpc")
    release = threading.Event()
    running = threading.Semaphore(0)
    try:
        for _ in range(5):  # two more than the threads
            pool.submit(lambda: (running.release(), release.wait(10)))
        for _ in range(3):
            assert running.acquire(timeout=10)
        assert _started_threads("limit-rpc") == {"limit-rpc_0", "limit-rpc_1", "limit-rpc_2"}
        assert not running.acquire(timeout=0.2)  # the two others wait
    finally:
        release.set()
    for _ in range(2):
        assert running.acquire(timeout=10)
    pool.shutdown()


def test_a_free_thread_takes_the_next_call_instead_of_a_new_thread_starting():
    pool = RpcThreads(8, thread_name_prefix="reuse-rpc")
    for _ in range(20):  # one call at a time, with a pause for the thread to count itself free
        done = threading.Event()
        pool.submit(done.set)
        assert done.wait(10)
        time.sleep(0.02)
    assert len(_started_threads("reuse-rpc")) < 4  # one, unless the machine stalled a thread
    pool.shutdown()


def test_an_exception_in_a_call_is_logged_and_the_thread_keeps_serving(caplog):
    pool = RpcThreads(1)

    def broken() -> None:
        raise KeyError("lost")

    pool.submit(broken)
    finished = threading.Event()
    pool.submit(finished.set)
    assert finished.wait(10)
    pool.shutdown()
    logged = [entry.fields["error"] for entry in caplog.records if entry.getMessage() == "rpc_call_error"]
    assert logged == ["KeyError: 'lost'"]


def test_shutdown_finishes_queued_calls_ends_every_thread_and_refuses_new_calls():
    pool = RpcThreads(3, thread_name_prefix="shutdown-rpc")
    order: list[int] = []
    release = threading.Event()
    for _ in range(3):  # start all three threads
        pool.submit(release.wait, 10)
    for index in range(10):
        pool.submit(order.append, index)
    release.set()
    pool.shutdown()
    assert sorted(order) == list(range(10))
    assert _started_threads("shutdown-rpc") == set()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(order.append, 10)


def test_a_finished_call_keeps_nothing_of_its_arguments_alive():
    pool = RpcThreads(1)

    class Payload:
        pass

    payload, finished = Payload(), threading.Event()
    kept = weakref.ref(payload)
    call = pool.submit(lambda _: None, payload)
    call.add_done_callback(lambda _: finished.set())
    del payload
    assert finished.wait(10)
    gc.collect()
    assert kept() is None  # the idle thread still refers to `call`, not to what it ran on
    pool.shutdown()


def test_a_pool_needs_at_least_one_thread():
    with pytest.raises(ValueError, match="max_workers is 0"):
        RpcThreads(0)


def test_a_call_waiting_for_its_request_is_parked_and_the_next_call_gets_a_thread():
    pool = RpcThreads(1, thread_name_prefix="park-rpc", max_parked=4)
    request_arrived, finished = threading.Event(), threading.Event()

    def slow_writer() -> None:  # grpc's thread waits for the request, then runs the behavior
        request_arrived.wait(10)
        pool.request_read()

    pool.submit(slow_writer)
    pool.submit(finished.set)
    assert finished.wait(10)  # on a second thread, started once the first was parked
    assert pool.parked() == 1
    request_arrived.set()
    deadline = time.monotonic() + 10
    while pool.parked() or len(_started_threads("park-rpc_")) > 1:  # the extra thread ends
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pool.shutdown()


def test_a_call_that_started_its_behavior_is_never_parked():
    pool = RpcThreads(1, max_parked=4)
    release, finished = threading.Event(), threading.Event()
    pool.submit(lambda: (pool.request_read(), release.wait(10)))
    pool.submit(finished.set)
    assert not finished.wait(0.3)  # the second call waits for the only worker
    assert pool.parked() == 0
    release.set()
    assert finished.wait(10)
    pool.shutdown()
