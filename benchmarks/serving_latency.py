"""Latency and throughput of the policy server on loopback, against floors measured in the same run.

    python benchmarks/serving_latency.py [--calls 2000] [--batch-calls 200]

A server process hosts the policy server and a bare gRPC echo service (raw bytes in, raw bytes
out, the sizes of the ActRequest and ActResponse of one observation, or of a batch); this
process is the client. Calls of each kind alternate in blocks, so load from other processes
on a shared machine weighs on all of them alike.
The policy is an exported ONNX MLP (28 observations -> 256 -> 256 -> 8 squashed-Gaussian
actions, Minitaur-sized) served on onnxruntime. Printed ratios:

    unary Act p50 / echo p50                      target <= 1.2
    StreamAct p50 per step / unary Act p50        target <= 1.0
    batch-256 served actions/s / in process       target >= 0.5
    unary Act p99 during a reload / steady        target <= 2.0

The reload case publishes new versions of the policy into the server's repository (copied
under a hidden name, then renamed) and times unary Acts from the moment of publishing until
the new version answers (the poll, the load with its hash check, the warm-up and the swap all
happen meanwhile), against blocks of the same number of Acts with no reload.

Two more floors split the time of an Act between the model and the serving code: the echo
service also answers after running the policy's ONNX model on a bare onnxruntime session
(no parsing, no checks, a fixed observation), which is the least any server running this
model on this machine can take; and batch throughput is measured both one call at a time and
with several client threads keeping calls in flight, as concurrent robots or games would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

OBSERVATION_SIZE = 28
ACTION_SIZE = 8
HIDDEN_SIZES = (256, 256)  # the SAC actor's default, as a Minitaur policy has
BATCH_SIZE = 256
CLIENT_THREADS = 8  # batch calls kept in flight for the throughput measurement
POLL_INTERVAL = 0.2  # the server's repository scan period
RELOADS = 10


def export_mlp(directory: Path, hidden_sizes: tuple[int, ...] = HIDDEN_SIZES, name: str = "mlp") -> Path:
    """Export a randomly initialised MLP policy to ONNX (TensorFlow is only needed here)."""
    import gymnasium as gym
    import keras
    import tensorflow as tf

    from gymserve.policies import ActorPolicy, export_policy

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    layers = [keras.Input((OBSERVATION_SIZE,))]
    layers += [keras.layers.Dense(size, activation="tanh") for size in hidden_sizes]
    layers.append(keras.layers.Dense(2 * ACTION_SIZE))
    observation_space = gym.spaces.Box(-np.inf, np.inf, (OBSERVATION_SIZE,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_SIZE,), np.float32)
    policy = ActorPolicy(keras.Sequential(layers), observation_space, action_space)
    path = directory / name
    export_policy(policy, path, formats=["onnx"], metadata={"algorithm": "benchmark"})
    return path


def payloads(policy_path: Path, observations: np.ndarray) -> tuple[bytes, bytes]:
    """The serialized ActRequest and ActResponse for `observations`: what the echo service carries."""
    from gymserve.policies import load
    from gymserve.serving.client.policy_client import act_request
    from gymserve.serving.client.protos import policy_service_pb2 as pb
    from gymserve.serving.client.tensors import fill_tensor

    request = act_request(observations, "mlp", None, "greedy", None, None, False)
    response = pb.ActResponse(policy_name="mlp", policy_version=1)
    fill_tensor(response.actions, load(policy_path).action(observations).action)
    return request.SerializeToString(), response.SerializeToString()


def example_observations() -> tuple[np.ndarray, np.ndarray]:
    """One observation and a batch, the same in the client and the server process."""
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal(OBSERVATION_SIZE).astype(np.float32),
        rng.standard_normal((BATCH_SIZE, OBSERVATION_SIZE)).astype(np.float32),
    )


ECHOES = dict(zip(("single", "batch"), example_observations(), strict=True))


def bare_session(policy_path: Path):
    """An onnxruntime session on the exported model, threaded like the server's, without gymserve."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(policy_path / "policy.onnx"), options, providers=["CPUExecutionProvider"])


def serve(policy_path: Path) -> None:
    """The server process: echo and policy servers, ports on stdout, stop on stdin EOF.

    The policy is served from a repository beside the export (`repository/mlp/1`), which the
    reload case adds versions to.
    """
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from gymserve.serving.server.config import ServerConfig
    from gymserve.serving.server.policy_server import PolicyServer

    config = ServerConfig(
        address="127.0.0.1:0", repository=repository_of(policy_path), poll_interval=POLL_INTERVAL
    )
    echo = grpc.server(ThreadPoolExecutor(max_workers=config.workers))
    session = bare_session(policy_path)
    handlers = {}
    for name, observations in ECHOES.items():
        response = payloads(policy_path, observations)[1]
        batch = observations.reshape(-1, OBSERVATION_SIZE)

        def echo_after_inference(request, context, batch=batch, response=response):
            session.run(["action"], {"observations": batch})
            return response

        handlers[name] = grpc.unary_unary_rpc_method_handler(
            lambda request, context, response=response: response
        )
        handlers[f"{name}_inference"] = grpc.unary_unary_rpc_method_handler(echo_after_inference)
    echo.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("benchmark.Echo", handlers)])
    echo_port = echo.add_insecure_port("127.0.0.1:0")
    echo.start()
    with PolicyServer(config) as server:
        print(f"127.0.0.1:{echo_port} {server.address}", flush=True)
        sys.stdin.read()
    echo.stop(0)


def repository_of(policy_path: Path) -> Path:
    return policy_path.parent / "repository"


def publish(policy_path: Path, version: int) -> None:
    """Copy the export in as `version` of "mlp", appearing at once (renamed from a hidden name)."""
    versions = repository_of(policy_path) / "mlp"
    staging = versions / f".staging-{version}"
    shutil.copytree(policy_path, staging)
    staging.rename(versions / str(version))


def reload_latencies(act: Callable[[], int], policy_path: Path, calls: int) -> dict[str, np.ndarray]:
    """Seconds per unary Act while a new version is published and swapped in, and in steady blocks."""
    seconds: dict[str, list[float]] = {"steady": [], "reload": []}
    for version in range(2, RELOADS + 2):
        for case in ("steady", "reload"):
            if case == "reload":
                publish(policy_path, version)
            served, count = 0, 0
            while (served != version if case == "reload" else False) or count < calls:
                started = time.perf_counter()
                served = act()
                seconds[case].append(time.perf_counter() - started)
                count += 1
    return {case: np.asarray(values) for case, values in seconds.items()}


def interleaved_latencies(
    calls: dict[str, Callable[[], object]], count: int, rounds: int = 20
) -> dict[str, np.ndarray]:
    """Seconds per call of each named call, timed in alternating blocks.

    The machine is shared, so background load comes and goes; alternating blocks of each call
    expose them all to the same load and keep the ratios meaningful.
    """
    for call in calls.values():
        for _ in range(min(100, count)):
            call()
    block = max(1, count // rounds)
    seconds = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(block):
                started = time.perf_counter()
                call()
                seconds[name].append(time.perf_counter() - started)
    return {name: np.asarray(values) for name, values in seconds.items()}


def actions_per_second(
    calls: dict[str, tuple[Callable[[], object], int]], count: int, rounds: int = 10
) -> dict[str, float]:
    """Batch actions per second of each named (call, client threads), timed in alternating rounds."""
    from concurrent.futures import ThreadPoolExecutor

    block = max(1, count // rounds)
    pools = {name: ThreadPoolExecutor(threads) for name, (_, threads) in calls.items()}
    seconds = dict.fromkeys(calls, 0.0)
    for _ in range(rounds):
        for name, (call, threads) in calls.items():
            shares = [block // threads + (i < block % threads) for i in range(threads)]
            started = time.perf_counter()
            list(pools[name].map(lambda calls_here, call=call: [call() for _ in range(calls_here)], shares))
            seconds[name] += time.perf_counter() - started
    for pool in pools.values():
        pool.shutdown()
    return {name: BATCH_SIZE * block * rounds / total for name, total in seconds.items()}


def describe(name: str, seconds: np.ndarray) -> str:
    p50, p99 = np.percentile(seconds, [50, 99]) * 1e6
    return f"{name:<34} p50 {p50:8.1f} us   p99 {p99:8.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per latency measurement")
    parser.add_argument("--batch-calls", type=int, default=200, help="timed batch-256 calls")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    import grpc

    from gymserve.policies import load
    from gymserve.serving import PolicyClient

    observation, batch = example_observations()
    with tempfile.TemporaryDirectory() as directory:
        policy_path = export_mlp(Path(directory))
        publish(policy_path, 1)
        requests = {name: payloads(policy_path, observations)[0] for name, observations in ECHOES.items()}
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(policy_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            echo_address, policy_address = server.stdout.readline().split()
            with grpc.insecure_channel(echo_address) as channel, PolicyClient(policy_address) as client:

                def echo(method: str, request: bytes) -> Callable[[], object]:
                    call = channel.unary_unary(f"/benchmark.Echo/{method}")
                    return lambda: call(request, timeout=10)

                local = load(policy_path)
                with client.stream("mlp") as session:
                    single = interleaved_latencies(
                        {
                            "echo": echo("single", requests["single"]),
                            "inference": echo("single_inference", requests["single"]),
                            "unary": lambda: client.act(observation, "mlp"),
                            "stream": lambda: session.step(observation),
                        },
                        args.calls,
                    )
                batched = interleaved_latencies(
                    {
                        "echo": echo("batch", requests["batch"]),
                        "inference": echo("batch_inference", requests["batch"]),
                        "served": lambda: client.act(batch, "mlp"),
                        "local": lambda: local.action(batch),
                    },
                    args.batch_calls,
                )
                reloads = reload_latencies(
                    lambda: client.act_with_details(observation, "mlp").policy_version,
                    policy_path,
                    args.calls // 10,
                )
                rates = actions_per_second(
                    {
                        "in flight": (lambda: client.act(batch, "mlp"), CLIENT_THREADS),
                        "local": (lambda: local.action(batch), 1),
                    },
                    args.batch_calls * 5,
                )
        finally:
            server.stdin.close()
            server.wait(timeout=60)

    sizes = ", ".join(f"{name} {len(request)} B" for name, request in requests.items())
    print(f"loopback, {os.cpu_count()} CPUs, {HIDDEN_SIZES} MLP on onnxruntime, requests: {sizes}")
    p50 = {name: float(np.median(seconds)) for name, seconds in single.items()}
    batch_p50 = {name: float(np.median(seconds)) for name, seconds in batched.items()}
    print(describe("echo (bare gRPC, same payload)", single["echo"]))
    print(describe("echo + bare onnxruntime run", single["inference"]))
    print(describe("unary Act, 1 observation", single["unary"]))
    print(describe("StreamAct, per step", single["stream"]))
    print(describe(f"echo, batch-{BATCH_SIZE} payload", batched["echo"]))
    print(describe(f"echo + bare onnxruntime, batch {BATCH_SIZE}", batched["inference"]))
    print(describe(f"unary Act, batch {BATCH_SIZE}", batched["served"]))
    print(describe(f"in process, batch {BATCH_SIZE}", batched["local"]))
    served_rate = BATCH_SIZE / batch_p50["served"]
    local_rate = BATCH_SIZE / batch_p50["local"]
    print(f"batch {BATCH_SIZE} actions/s: served {served_rate:,.0f}, in process {local_rate:,.0f}")
    print(
        f"batch {BATCH_SIZE} actions/s, {CLIENT_THREADS} client threads: served {rates['in flight']:,.0f}, "
        f"in process (one thread) {rates['local']:,.0f}"
    )
    print(describe("unary Act, steady (reload blocks)", reloads["steady"]))
    print(describe(f"unary Act, during {RELOADS} reloads", reloads["reload"]))
    reload_p99 = {case: float(np.percentile(seconds, 99)) for case, seconds in reloads.items()}
    ratios = [
        ("unary Act p50 / echo p50", p50["unary"] / p50["echo"], "target <= 1.2"),
        ("  model: echo+onnxruntime / echo", p50["inference"] / p50["echo"], "floor of any server"),
        ("  serving code: Act / echo+onnxruntime", p50["unary"] / p50["inference"], ""),
        ("StreamAct step p50 / unary Act p50", p50["stream"] / p50["unary"], "target <= 1.0"),
        ("served / in-process actions/s", served_rate / local_rate, "target >= 0.5"),
        (
            "  ceiling one call at a time",
            batch_p50["local"] / batch_p50["inference"],
            "in process / echo+onnxruntime",
        ),
        (f"  {CLIENT_THREADS} client threads / in process", rates["in flight"] / rates["local"], ""),
        (
            "unary Act p99 during reload / steady",
            reload_p99["reload"] / reload_p99["steady"],
            "target <= 2.0",
        ),
    ]
    for name, ratio, note in ratios:
        print(f"{name:<40} {ratio:5.2f}   {f'({note})' if note else ''}")


if __name__ == "__main__":
    main()
