"""Throughput and latency of many single-observation clients, with dynamic batching off and on.

    python benchmarks/serving_throughput.py [--seconds 2] [--rounds 3]
        [--batch-timeout-micros 0] [--num-batch-threads 1] [--batch-max-size 64]

A server process runs two policy servers on loopback with the same repository and the same
number of RPC threads: one with batching off (the baseline) and one with batching on. Both
serve two exported ONNX MLPs (28 observations -> 8 squashed-Gaussian actions): "minitaur"
with 256-256 hidden layers (a Minitaur SAC actor's size) and "heavy" with three 1024-wide
layers. This process runs 1, 8 or 64 client threads, each with its own channel, sending
pre-serialized one-observation greedy Act requests back to back for `--seconds`; every
(model, clients, batching) cell is measured once per round, the cells alternating, so
background load weighs on all alike. Printed per cell: calls/s, p50 and p99 latency, and the
CPU time per call of the server and client processes together (read from /proc while the
cell's calls are timed); per model and client count: the batched / unbatched throughput ratio and p99 ratio.

Goals at 64 clients: heavy model throughput >= 2x unbatched with p99 no worse; Minitaur-sized
model >= 1.0x.

Batching removes model time only, and on one machine every call also costs the gRPC and Python
work of both processes. So the script times each model alone afterwards (bare onnxruntime, one
observation and a full batch, CPU time) and estimates what batching can give at 64 clients: a call's CPU
time with batching off, over the same time with its model call replaced by its row's share of a
full batch. The estimate assumes the cores stay as busy with batching on as off ("CPU busy").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from serving_latency import HIDDEN_SIZES, OBSERVATION_SIZE, bare_session, export_mlp

MODELS = {"minitaur": HIDDEN_SIZES, "heavy": (1024, 1024, 1024)}
CLIENT_COUNTS = (1, 8, 64)
WORKERS = 2 * max(CLIENT_COUNTS)  # every client's call can be in the server at once
ACT_METHOD = "/gymserve.serving.v1.PolicyService/Act"


def serve(repository: Path, batching: dict[str, int]) -> None:
    """The server process: both servers' addresses on stdout, stop on stdin EOF, then each
    policy's mean batch size with batching on."""
    from gymserve.serving.server.config import ServerConfig
    from gymserve.serving.server.policy_server import PolicyServer

    common = {"address": "127.0.0.1:0", "repository": repository, "poll_interval": 0, "workers": WORKERS}
    with (
        PolicyServer(ServerConfig(**common)) as unbatched,
        PolicyServer(ServerConfig(**common, **batching)) as batched,
    ):
        print(unbatched.address, batched.address, flush=True)
        sys.stdin.read()
        registry = batched.metrics.registry
        for name in sorted(path.name for path in repository.iterdir()):
            count, rows = (
                registry.get_sample_value(f"gymserve_model_batch_size_{kind}", {"policy": name})
                for kind in ("count", "sum")
            )
            print(f"{name}: {rows / count:.1f} observations per model call with batching on", flush=True)


def request_bytes(name: str, observation: np.ndarray) -> bytes:
    from gymserve.serving.client.policy_client import act_request

    return act_request(observation, name, None, "greedy", None, None, False).SerializeToString()


def mlp_observations(rows: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, OBSERVATION_SIZE)).astype(np.float32)


class ServerPair:
    """A server process (this script's `--serve`) holding a policy server with batching off and
    one with batching on, on loopback, both serving `repository`."""

    def __init__(self, repository: Path, batching: dict[str, int]):
        arguments = [f"--{name.replace('_', '-')}={value}" for name, value in batch_arguments(batching)]
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(repository), *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.addresses = dict(zip(("off", "on"), self.process.stdout.readline().split(), strict=True))

    def close(self) -> str:
        """Stop the servers; their report of batch sizes."""
        self.process.stdin.close()
        report = self.process.stdout.read()
        self.process.wait(timeout=60)
        return report


def batch_arguments(batching: dict[str, int]) -> list[tuple[str, int]]:
    """The command-line options (without dashes) that give `batching`."""
    names = {"batching_max_size": "batch_max_size", "batching_timeout_micros": "batch_timeout_micros"}
    names["batching_threads"] = "num_batch_threads"
    return [(names[field], value) for field, value in batching.items()]


def add_batching_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per cell and round")
    parser.add_argument("--rounds", type=int, default=3, help="times every cell is measured")
    parser.add_argument("--batch-max-size", type=int, default=64)
    parser.add_argument("--batch-timeout-micros", type=int, default=0)
    parser.add_argument("--num-batch-threads", type=int, default=1)


def batching_of(args: argparse.Namespace) -> dict[str, int]:
    return {
        "batching_max_size": args.batch_max_size,
        "batching_timeout_micros": args.batch_timeout_micros,
        "batching_threads": args.num_batch_threads,
    }


def measure_cells(
    servers: ServerPair,
    requests: dict[str, bytes],
    client_counts: tuple[int, ...],
    rounds: int,
    seconds: float,
) -> tuple[dict[tuple, list], dict[tuple, float]]:
    """Every (model, clients, batching) cell measured once per round, the cells alternating: each
    cell's [calls, latencies] and the CPU seconds of the server and this process meanwhile."""
    cells = [(m, c, b) for m in requests for c in client_counts for b in servers.addresses]
    totals = {cell: [0, []] for cell in cells}
    cpu = dict.fromkeys(cells, 0.0)
    for _ in range(rounds):
        for cell in cells:
            model, clients, batched = cell
            count, latencies, cpu_seconds = measure(
                servers.addresses[batched],
                requests[model],
                clients,
                seconds,
                watched=(servers.process.pid, os.getpid()),
            )
            cpu[cell] += cpu_seconds
            totals[cell][0] += count
            totals[cell][1] += latencies
    return totals, cpu


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    address: str,
    request: bytes,
    clients: int,
    seconds: float,
    metadata: tuple[tuple[str, str], ...] = (),
    watched: tuple[int, ...] = (),
) -> tuple[int, list[float], float]:
    """Calls answered by `clients` threads in `seconds`, every call's latency, and the CPU time
    the `watched` processes spent meanwhile (connecting the channels left out)."""
    import grpc

    channels = [grpc.insecure_channel(address) for _ in range(clients)]
    calls = [channel.unary_unary(ACT_METHOD) for channel in channels]
    for call in calls:
        call(request, timeout=30, metadata=metadata)  # connect before timing
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        call, own = calls[index], latencies[index]
        barrier.wait()
        while (started := time.perf_counter()) < stop_at[0]:
            call(request, timeout=30, metadata=metadata)
            own.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    cpu_before = sum(map(process_cpu_seconds, watched))
    stop_at[0] = time.perf_counter() + seconds
    barrier.wait()
    for thread in threads:
        thread.join()
    cpu_seconds = sum(map(process_cpu_seconds, watched)) - cpu_before
    for channel in channels:
        channel.close()
    every = [latency for own in latencies for latency in own]
    return len(every), every, cpu_seconds


def model_seconds(policy_path: Path, observations: np.ndarray, calls: int = 1000) -> float:
    """Median CPU time of one bare onnxruntime call of the exported model on `observations`, after
    a warm-up (CPU time, as the estimate compares it with calls' CPU time, and a shared machine's
    other processes lengthen long calls' wall time most)."""
    session = bare_session(policy_path)
    feeds = {"observations": observations}
    durations = []
    for _ in range(calls + min(50, calls)):
        started = time.thread_time()  # one intra-op thread: onnxruntime runs in the calling thread
        session.run(["action"], feeds)
        durations.append(time.thread_time() - started)
    return float(np.median(durations[min(50, calls) :]))


def cell_figures(totals: dict[tuple, list], seconds: float) -> dict[tuple, tuple[float, float, float]]:
    """Calls/s, p50 and p99 (ms) of each cell from its [calls, latencies] gathered over `seconds`."""
    return {
        cell: (count / seconds, *(np.percentile(latencies, [50, 99]) * 1e3))
        for cell, (count, latencies) in totals.items()
    }


def report(
    totals: dict[tuple, list],
    cpu: dict[tuple, float],
    alone: dict[tuple[str, int], float],
    batching: dict[str, int],
    rounds: int,
    seconds: float,
) -> None:
    """Print every cell's figures, what batching can give at most (from `alone`: the model's bare
    time on 1 observation and on a full batch), and the batched / unbatched ratios."""
    models = list(dict.fromkeys(model for model, _, _ in totals))
    client_counts = tuple(dict.fromkeys(clients for _, clients, _ in totals))
    print(
        f"loopback, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {WORKERS} RPC threads, "
        f"batching on = {batching}, {rounds} x {seconds:g} s per cell"
    )
    print(
        f"{'model':<9} {'clients':>7} {'batching':>8} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU us/call':>12} {'CPU busy':>9}"
    )
    timed_seconds = rounds * seconds
    summary, figures = {}, cell_figures(totals, timed_seconds)
    for cell, (rate, p50, p99) in figures.items():
        summary[cell] = (rate, p50, p99)
        model, clients, batched = cell
        cpu_us_per_call = cpu[cell] / totals[cell][0] * 1e6
        busy = cpu[cell] / (timed_seconds * os.cpu_count())  # of all cores, server and clients together
        print(
            f"{model:<9} {clients:>7} {batched:>8} {rate:>9,.0f} {p50:>8.2f} {p99:>8.2f} "
            f"{cpu_us_per_call:>12.0f} {busy:>9.0%}"
        )
    most_clients, batch_rows = max(client_counts), batching["batching_max_size"]
    for model in models:
        one_observation_us = alone[(model, 1)] * 1e6
        row_us = alone[(model, batch_rows)] / batch_rows * 1e6
        call_us = cpu[(model, most_clients, "off")] / totals[(model, most_clients, "off")][0] * 1e6
        print(
            f"{model}: the model alone takes {one_observation_us:.0f} us for one observation and "
            f"{row_us:.0f} us a row in a batch of {batch_rows}; with {call_us:.0f} us of CPU per call "
            f"at {most_clients} clients, batching can lift throughput by about "
            f"{call_us / (call_us - one_observation_us + row_us):.2f}x at most"
        )
    for model in models:
        for clients in client_counts:
            (rate_off, p50_off, p99_off), (rate_on, p50_on, p99_on) = (
                summary[(model, clients, b)] for b in ("off", "on")
            )
            print(
                f"{model:<9} {clients:>3} clients: batched / unbatched "
                f"throughput {rate_on / rate_off:5.2f}x, p50 {p50_on / p50_off:5.2f}x, "
                f"p99 {p99_on / p99_off:5.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_batching_options(parser)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    batching = batching_of(args)
    if args.serve:
        serve(args.serve, batching)
        return

    with tempfile.TemporaryDirectory() as directory:
        repository = Path(directory) / "repository"
        for name, hidden_sizes in MODELS.items():
            export_mlp(repository / name, hidden_sizes, name="1")
        servers = ServerPair(repository, batching)
        try:
            requests = {model: request_bytes(model, mlp_observations(1)[0]) for model in MODELS}
            totals, cpu = measure_cells(servers, requests, CLIENT_COUNTS, args.rounds, args.seconds)
        finally:
            batch_sizes = servers.close()
        alone = {
            (model, rows): model_seconds(repository / model / "1", mlp_observations(rows))
            for model in MODELS
            for rows in (1, args.batch_max_size)
        }
    report(totals, cpu, alone, batching, args.rounds, args.seconds)
    print(batch_sizes, end="")


if __name__ == "__main__":
    main()
