"""Slow or idle clients without a token cannot take the server's capacity from authenticated ones."""

from __future__ import annotations

import logging
import os
import queue
import statistics
import threading
import time
from collections import Counter

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_support import greedy_by_hand, observations, standard_policies, start_server

from gymserve.serving import PolicyClient, PolicyServiceError
from gymserve.serving.server.logs import RateLimitedLog

ACT = "/gymserve.serving.v1.PolicyService/Act"
CHECK = "/grpc.health.v1.Health/Check"
GOOD = observations(1, seed=5)[0]
TOKEN = "s3cret"
# 1,000 in a manual run (GYMSERVE_SLOW_WRITERS=1000); fewer keep the suite quick on 2 cores
SLOW_WRITERS = int(os.environ.get("GYMSERVE_SLOW_WRITERS", "200"))
STREAMS_PER_CHANNEL = 100


def rpc_threads() -> int:
    return sum(thread.name.startswith("gymserve-rpc_") for thread in threading.enumerate())


def act_p50(client: PolicyClient, calls: int = 200) -> float:
    durations = []
    for _ in range(calls):
        began = time.perf_counter()
        assert client.act(GOOD, "linear", version=1) == greedy_by_hand(GOOD)
        durations.append(time.perf_counter() - began)
    return statistics.median(durations)


def open_slow_writers(channels: list[grpc.Channel], method: str, stalled: queue.SimpleQueue) -> list:
    """Calls of a unary `method` that send their headers, then no message, from clients with no token."""
    calls = []
    for index in range(SLOW_WRITERS):
        call = channels[index // STREAMS_PER_CHANNEL].stream_unary(method)
        calls.append(call.future(iter(stalled.get, None)))
    return calls


@pytest.mark.parametrize("method", [ACT, CHECK])
def test_slow_writers_without_a_token_do_not_slow_authenticated_act_nor_stop_check(method: str):
    server = start_server(standard_policies(), auth_token=TOKEN)
    stalled = queue.SimpleQueue()
    channels = [grpc.insecure_channel(server.address) for _ in range(-(-SLOW_WRITERS // STREAMS_PER_CHANNEL))]
    try:
        with PolicyClient(server.address, token=TOKEN) as client:
            act_p50(client, 50)
            idle = act_p50(client)
            calls = open_slow_writers(channels, method, stalled)
            deadline = time.monotonic() + 30
            while rpc_threads() < SLOW_WRITERS:  # each slow call holds a (parked) thread
                assert time.monotonic() < deadline, f"{rpc_threads()} threads for {SLOW_WRITERS} slow calls"
                time.sleep(0.05)
            busy = act_p50(client)
            health = health_pb2_grpc.HealthStub(channels[0])
            check = health.Check(health_pb2.HealthCheckRequest(service="linear"), timeout=5)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            assert not any(call.done() for call in calls)  # they still hold: nothing closed them
            for call in calls:
                call.cancel()
            idle = (idle + act_p50(client)) / 2  # the machine is shared: idle before and after
        assert busy <= 2 * idle, f"Act p50 {busy * 1e3:.2f} ms with slow writers, {idle * 1e3:.2f} ms without"
    finally:
        for channel in channels:
            channel.close()
        server.stop(grace=0)


def watch(channel: grpc.Channel, service: str = "") -> grpc.Future:
    return health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=service))


def test_watch_streams_beyond_their_limit_are_refused_and_stream_act_still_opens():
    server = start_server(standard_policies(), auth_token=TOKEN, max_health_watches=3)
    try:
        with (
            grpc.insecure_channel(server.address) as channel,
            PolicyClient(server.address, token=TOKEN) as client,
        ):
            kept = [watch(channel) for _ in range(3)]
            for stream in kept:
                assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
            refused = []
            for stream in [watch(channel) for _ in range(9)]:
                with pytest.raises(grpc.RpcError) as raised:
                    next(stream)
                refused.append((raised.value.code(), raised.value.details()))
            assert (
                refused
                == [
                    (
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        "all 3 health Watch slots are in use; retry later or poll with Check",
                    )
                ]
                * 9
            )
            sessions = [client.stream("linear", version=1) for _ in range(server.config.max_streams)]
            for session in sessions:
                assert session.step(GOOD) == greedy_by_hand(GOOD)
            for session in sessions:
                session.close()
            for stream in kept:
                stream.cancel()
    finally:
        server.stop(grace=0)


def test_an_idle_watch_is_closed_and_its_slot_freed():
    server = start_server(standard_policies(), max_health_watches=1, health_watch_idle_timeout=0.5)
    try:
        with grpc.insecure_channel(server.address) as channel:
            first = watch(channel)
            assert next(first).status == health_pb2.HealthCheckResponse.SERVING
            began = time.monotonic()
            with pytest.raises(grpc.RpcError) as raised:
                next(first)
            assert 0.5 <= time.monotonic() - began < 5
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert raised.value.details() == (
                "health Watch saw no status change for 0.5 s; the server closed it to free its slot "
                "(watch again to go on)"
            )
            second = watch(channel)
            assert next(second).status == health_pb2.HealthCheckResponse.SERVING
            second.cancel()
    finally:
        server.stop(grace=0)


def test_refusals_and_idle_closes_are_logged_rate_limited(caplog: pytest.LogCaptureFixture):
    server = start_server(
        standard_policies(), auth_token=TOKEN, max_health_watches=1, health_watch_idle_timeout=5.0
    )
    try:
        with (
            caplog.at_level(logging.INFO, "gymserve.serving"),
            grpc.insecure_channel(server.address) as channel,
            PolicyClient(server.address) as without_token,
        ):
            kept = watch(channel)
            next(kept)
            for _ in range(30):  # three times the burst, well within the idle timeout
                with pytest.raises(grpc.RpcError):
                    next(watch(channel))
                with pytest.raises(PolicyServiceError):
                    without_token.act(GOOD, "linear")
            with pytest.raises(grpc.RpcError):
                next(kept)  # closed idle: the third kind of event
        counts = Counter(record.getMessage() for record in caplog.records)
        assert (counts["stream_refused"], counts["auth_refused"], counts["stream_idle_closed"]) == (10, 10, 1)
    finally:
        server.stop(grace=0)


def test_the_next_line_logged_counts_the_lines_dropped(caplog: pytest.LogCaptureFixture):
    log = RateLimitedLog(burst=2, period=0.3)
    with caplog.at_level(logging.INFO, "gymserve.serving"):
        for index in range(50):
            log.log(logging.WARNING, "stream_refused", index=index)
        time.sleep(0.35)
        log.log(logging.WARNING, "stream_refused", index=50)
    logged = [record.fields for record in caplog.records]
    assert logged == [{"index": 0}, {"index": 1}, {"index": 50, "similar_events_dropped": 48}]
