"""A server that stays up: garbage bytes, idle streams, expired deadlines, huge names, shutdown."""

from __future__ import annotations

import logging
import queue
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc
from serving_support import (
    GYMSERVE,
    SlowPolicy,
    greedy_by_hand,
    observations,
    read_events_until,
    standard_policies,
    start_server,
    wait_until,
)

from gymserve.serving import PolicyClient, PolicyServiceError
from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.server.served_policies import ServedPolicies

ACT = "/gymserve.serving.v1.PolicyService/Act"
STREAM_ACT = "/gymserve.serving.v1.PolicyService/StreamAct"
GOOD = observations(1, seed=3)[0]
MALFORMED = {
    "truncated field": b"\x0a\xff",
    "overlong varint": b"\x10" + b"\xff" * 10 + b"\x01",
    "invalid UTF-8 name": b"\x0a\x02\xc3\x28",
    "truncated tensor": b"\x1a\x05\x08",
    "invalid tag": b"\xff\xff\xff\xff",
}


def test_the_garbage_really_is_malformed():
    for raw in MALFORMED.values():
        with pytest.raises(DecodeError):
            pb.ActRequest.FromString(raw)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def send_malformed_acts(channel: grpc.Channel, count: int) -> set[tuple[grpc.StatusCode, str]]:
    """`count` malformed Act calls, 200 in flight at a time; the set of (code, details) answered."""
    act = channel.unary_unary(ACT)  # no serializer: the bytes go out as they are
    payloads = list(MALFORMED.values())
    answers = set()
    for start in range(0, count, 200):
        futures = [act.future(payloads[i % len(payloads)], timeout=30) for i in range(start, start + 200)]
        for future in futures:
            answers.add((future.code(), future.details()))
    return answers


def send_malformed_streams(channel: grpc.Channel, count: int) -> set[tuple[grpc.StatusCode, str]]:
    """`count` StreamAct calls sending one malformed message each, 10 at a time (within the slots)."""
    stream_act = channel.stream_stream(STREAM_ACT)
    payloads = list(MALFORMED.values())
    answers = set()
    for start in range(0, count, 10):
        calls = [
            stream_act(iter([payloads[i % len(payloads)]]), timeout=30) for i in range(start, start + 10)
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as raised:
                list(call)
            answers.add((raised.value.code(), raised.value.details()))
    return answers


def serve_in_subprocess(export: Path, grace_period: float) -> tuple[subprocess.Popen, str]:
    """`gymserve serve` of `export` as "cartpole" on a free port, and its address."""
    server = subprocess.Popen(
        [*GYMSERVE, "serve", "--address", "127.0.0.1:0", "--policy", f"cartpole={export}",
         "--grace-period", str(grace_period)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return server, read_events_until(server.stderr, "server_started")[-1]["address"]


def test_garbage_gets_invalid_argument_without_memory_growth_and_sigterm_still_exits(discrete_export: Path):
    server, address = serve_in_subprocess(discrete_export, grace_period=2)
    try:
        with grpc.insecure_channel(address) as channel:
            send_malformed_acts(channel, 2_000)  # warm-up: thread stacks, arenas, caches
            before = rss_mib(server.pid)
            answers = send_malformed_acts(channel, 20_000)
            answers |= send_malformed_streams(channel, 3_000)
            growth = rss_mib(server.pid) - before
        assert {code for code, _ in answers} == {grpc.StatusCode.INVALID_ARGUMENT}
        details = {message.split(":")[0] for _, message in answers}
        assert details == {"malformed Act request", "malformed StreamAct request"}
        assert growth < 10, f"the server grew by {growth:.1f} MiB"
        with PolicyClient(address) as client:
            assert client.act_with_details(GOOD, "cartpole").policy_version == 1
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=2 + 5) == 0
    finally:
        server.kill()
        server.wait()
        server.stderr.close()


def test_shutdown_after_garbage_streams_never_hangs():
    for _ in range(10):
        server = start_server(standard_policies(), grace_period=0.2)
        with grpc.insecure_channel(server.address) as channel:
            send_malformed_streams(channel, 30)
            open_stream = channel.stream_stream(STREAM_ACT)(iter(queue.SimpleQueue().get, None))
            began = time.monotonic()
            assert server.stop() is True
            assert time.monotonic() - began < 0.2 + 5
            open_stream.cancel()


def unary_act_p50(client: PolicyClient, calls: int = 200) -> float:
    durations = []
    for _ in range(calls):
        began = time.perf_counter()
        client.act(GOOD, "linear", version=1)
        durations.append(time.perf_counter() - began)
    return statistics.median(durations)


def test_idle_streams_of_every_kind_cannot_starve_unary_calls():
    server = start_server(standard_policies())
    never = queue.SimpleQueue()  # request iterators that never send
    try:
        with PolicyClient(server.address) as client, grpc.insecure_channel(server.address) as channel:
            unary_act_p50(client, 50)
            idle = unary_act_p50(client)
            calls = []
            for _ in range(32):
                calls.append(channel.stream_stream(STREAM_ACT)(iter(never.get, None)))
                calls.append(
                    reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                        iter(never.get, None)
                    )
                )
                calls.append(
                    health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
                )
            slots = server.config.max_streams + server.config.max_health_watches  # Watch has its own
            deadline = time.monotonic() + 20
            while sum(call.done() for call in calls) < len(calls) - slots:
                assert time.monotonic() < deadline, "the streams beyond the slots were not refused"
                time.sleep(0.05)
            refused = [call.code() for call in calls if call.done()]
            assert refused == [grpc.StatusCode.RESOURCE_EXHAUSTED] * (96 - slots)
            busy = unary_act_p50(client)
            for call in calls:
                call.cancel()
            # the machine is shared: the idle reference is taken before and after, and averaged
            idle = (idle + unary_act_p50(client)) / 2
            assert busy <= 2 * idle, (
                f"unary Act p50 {busy * 1e3:.2f} ms with idle streams, {idle * 1e3:.2f} ms without"
            )
    finally:
        server.stop(grace=0)


def test_streams_that_send_nothing_are_closed_with_a_clear_status():
    server = start_server(standard_policies(), stream_idle_timeout=0.5)
    try:
        with PolicyClient(server.address) as client, client.stream("linear", version=1) as session:
            assert session.step(GOOD) == greedy_by_hand(GOOD, version=1)
            time.sleep(1.6)
            with pytest.raises(PolicyServiceError) as raised:
                session.step(GOOD)
            assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "StreamAct stream sent nothing for 0.5 s" in raised.value.details
        with grpc.insecure_channel(server.address) as channel:
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter(queue.SimpleQueue().get, None)
            )
            with pytest.raises(grpc.RpcError) as raised:
                list(reflection)
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        server.stop(grace=0)


class GatedPolicy(SlowPolicy):
    """Counts the calls it computes and holds each until the test opens `gate`."""

    def __init__(self):
        super().__init__(0.0)
        self.calls = 0
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def _distribution(self, observations: np.ndarray, state: tuple):
        with self._lock:
            self.calls += 1
        assert self.gate.wait(10)
        return super()._distribution(observations, state)


def test_calls_whose_deadline_passed_while_queued_are_not_computed():
    slow = GatedPolicy()
    served = ServedPolicies()
    served.add("slow", 1, slow)
    server = start_server(served, workers=2)
    try:
        with PolicyClient(server.address, timeout=10) as client:
            busy = [threading.Thread(target=client.act, args=(GOOD, "slow")) for _ in range(2)]
            for thread in busy:
                thread.start()
            wait_until(lambda: slow.calls == 2)  # both workers are busy
            client.timeout = 0.2
            with pytest.raises(PolicyServiceError) as raised:
                client.act(GOOD, "slow")
            assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            slow.gate.set()  # the workers finish, then meet the expired call in the queue
            for thread in busy:
                thread.join()
            time.sleep(0.3)
            assert slow.calls == 2
    finally:
        slow.gate.set()
        server.stop(grace=0)


def test_huge_names_are_cut_in_messages_and_logs(caplog: pytest.LogCaptureFixture):
    server = start_server(standard_policies())
    try:
        with PolicyClient(server.address) as client, caplog.at_level(logging.INFO, "gymserve.serving"):
            with pytest.raises(PolicyServiceError) as raised:
                client.act(GOOD, "x" * 100 * 1024)
            assert raised.value.code == grpc.StatusCode.NOT_FOUND
            assert "(102400 characters, cut to 256)" in raised.value.details
            assert len(raised.value.details) < 1000
        (record,) = [r for r in caplog.records if r.getMessage() == "request_rejected"]
        assert record.fields["method"] == "Act" and record.fields["peer"].startswith("ipv4:127.0.0.1:")
        assert len(record.fields["error"]) < 1000
    finally:
        server.stop(grace=0)


def test_refused_tokens_and_malformed_requests_are_logged_with_peer_and_method(caplog):
    server = start_server(standard_policies(), auth_token="s3cret")
    try:
        with (
            caplog.at_level(logging.INFO, "gymserve.serving"),
            grpc.insecure_channel(server.address) as channel,
        ):
            with pytest.raises(grpc.RpcError) as raised:
                channel.unary_unary(ACT)(b"", timeout=10)
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            token = (("authorization", "Bearer s3cret"),)
            with pytest.raises(grpc.RpcError) as raised:
                channel.unary_unary(ACT)(MALFORMED["invalid tag"], timeout=10, metadata=token)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        events = {r.getMessage(): r.fields for r in caplog.records}
        for event in ("auth_refused", "malformed_request"):
            assert events[event]["method"] == ACT and events[event]["peer"].startswith("ipv4:127.0.0.1:")
    finally:
        server.stop(grace=0)


def test_a_second_signal_exits_at_once(discrete_export: Path):
    server, address = serve_in_subprocess(discrete_export, grace_period=60)
    try:
        with PolicyClient(address) as client, client.stream("cartpole") as session:
            session.step(GOOD)
            server.send_signal(signal.SIGTERM)
            read_events_until(server.stderr, "server_stopping")  # draining: the open stream may take 60 s
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=10) == 128 + signal.SIGTERM
    finally:
        server.kill()
        server.wait()
        server.stderr.close()
