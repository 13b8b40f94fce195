"""The server's RPC thread pool: every call runs once, callbacks run once, threads stay bounded."""

from __future__ import annotations

import threading

import pytest

from gymserve.serving.rpc_threads import RpcThreads


def test_every_call_runs_once_and_its_callbacks_run_once_after_it():
    pool = RpcThreads(4)
    ran, called_back = [], []
    lock = threading.Lock()

    def work(index: int) -> None:
        with lock:
            ran.append(index)

    calls = [pool.submit(work, index) for index in range(2000)]
    for index, call in enumerate(calls):  # many are done already, some are not
        call.add_done_callback(lambda done, index=index: called_back.append((index, done.done())))
    pool.shutdown()
    assert sorted(ran) == list(range(2000))
    assert sorted(called_back) == [(index, True) for index in range(2000)]


def test_threads_never_exceed_the_limit_and_calls_beyond_it_wait_for_a_free_one():
    pool = RpcThreads(3, thread_name_prefix="test-rpc")
    release = threading.Event()
    running = threading.Semaphore(0)
    names: set[str] = set()

    def blocked() -> None:
        names.add(threading.current_thread().name)
        running.release()
        release.wait(10)

    for _ in range(5):  # two more than the threads: they wait for a free one
        pool.submit(blocked)
    for _ in range(3):
        assert running.acquire(timeout=10)
    assert not running.acquire(timeout=0.2)
    assert names == {"test-rpc_0", "test-rpc_1", "test-rpc_2"}
    release.set()
    for _ in range(2):
        assert running.acquire(timeout=10)
    pool.shutdown()


def test_an_exception_in_a_call_is_logged_and_the_thread_keeps_serving(caplog):
    pool = RpcThreads(1)

    def broken() -> None:
        raise KeyError("lost")

    failed = pool.submit(broken)
    finished = threading.Event()
    pool.submit(finished.set)
    assert finished.wait(10)
    pool.shutdown()
    assert failed.done()
    logged = [entry.fields["error"] for entry in caplog.records if entry.getMessage() == "rpc_thread_error"]
    assert logged == ["KeyError: 'lost'"]


def test_shutdown_finishes_queued_calls_and_refuses_new_ones():
    pool = RpcThreads(1)
    order: list[int] = []
    for index in range(10):
        pool.submit(order.append, index)
    pool.shutdown()
    assert order == list(range(10))
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(order.append, 10)


def test_a_pool_needs_at_least_one_thread():
    with pytest.raises(ValueError, match="max_workers is 0"):
        RpcThreads(0)
