"""The policy server against Ray Serve and a bare gRPC + onnxruntime floor, with one client and load.

    python benchmarks/serving_peers.py [--seconds 2] [--rounds 3]
        [--servers floor futures roundtrip gymserve ray]

The same exported ONNX model (the Minitaur-sized MLP of `serving_latency`) is served up to five
ways (floor, gymserve and ray by default), each in its own process(es) on loopback:

    floor     a bare grpcio server with the same RPC threads and options as `gymserve serve`,
              answering Act by running the model on a bare onnxruntime session (a fixed
              observation, no parsing) and returning a pre-serialized response: the least any
              Python gRPC server running this model can take
    futures   the floor on `concurrent.futures.ThreadPoolExecutor`, the executor grpc's examples
              use, instead of gymserve's RPC threads (`gymserve.serving.server.rpc_threads`)
    roundtrip the floor's server, answering Act as every policy server must at the least: it
              parses the ActRequest, runs the model on the observation it carries and returns a
              new ActResponse (as Ray's replica does), without checking the observation or the
              action, version lookup, metrics or error handling
    gymserve  `gymserve serve` with its defaults (batching off)
    ray       Ray Serve's gRPC proxy with one replica that parses the ActRequest, runs the model
              on onnxruntime and builds the ActResponse (needs `pip install -e ".[bench]"`)

This process runs 1, 16 or 64 client threads, one channel each, sending the same pre-serialized
one-observation Act request back to back and taking the response as bytes (same code for all
servers). Every (clients, server) cell is measured for `--seconds` once per round, the servers
alternating inside each round, so load from other processes weighs on all alike. Printed per
cell: calls/s, p50, p99 and the server process's CPU time per call (user + system, read from
/proc while the cell's calls are timed; "-" for Ray, whose proxy and replica are separate processes); then the
ratios of the goals, and the server CPU per call of gymserve over the floor's, which other load
on the machine moves less than calls/s:

    gymserve p50 / ray p50                    goal <= 0.2 (1 and 64 clients)
    gymserve calls/s / ray calls/s            goal >= 5   (64 clients)
    gymserve p50 / floor p50                  goal <= 1.10 (1 client)
    gymserve calls/s / floor calls/s          goal >= 0.9  (16 and 64 clients)
    gymserve server CPU / floor server CPU    (16 and 64 clients; about 1.15 or less for the goal above)

and, for `futures` and `roundtrip` when measured, their calls/s and server CPU per call over the
floor's: what the RPC threads save, and how much of gymserve's distance to the floor is work
that no policy server can skip.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from serving_latency import ECHOES, bare_session, export_mlp, payloads
from serving_throughput import ACT_METHOD, cell_figures, measure

SERVERS = ("floor", "futures", "roundtrip", "gymserve", "ray")
DEFAULT_SERVERS = ("floor", "gymserve", "ray")
CLIENT_COUNTS = (1, 16, 64)
POLICY_NAME = "mlp"
METADATA = (("application", POLICY_NAME),)  # Ray Serve's route to the application; the others ignore it


def answer_act(session, request):
    """The ActResponse for `request`'s observation: the model's action, nothing checked."""
    from gymserve.serving.client.protos import policy_service_pb2 as pb
    from gymserve.serving.client.tensors import fill_tensor, from_tensor

    observations = from_tensor(request.observations).reshape(1, -1)
    actions = session.run(["action"], {"observations": observations})[0][0]
    response = pb.ActResponse(policy_name=request.policy_name, policy_version=1)
    fill_tensor(response.actions, actions)
    return response


def serve_floor(policy_path: Path, kind: str = "floor"):
    """The bare grpcio + onnxruntime server (`kind` floor, futures or roundtrip), configured as
    `gymserve serve` is, on its RPC threads (on `ThreadPoolExecutor` for futures)."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from gymserve.serving.client.protos import policy_service_pb2 as pb
    from gymserve.serving.server.config import ServerConfig
    from gymserve.serving.server.policy_server import server_options
    from gymserve.serving.server.rpc_threads import RpcThreads

    config = ServerConfig(policies={POLICY_NAME: policy_path})
    session = bare_session(policy_path)
    observation = ECHOES["single"][None]
    response = payloads(policy_path, ECHOES["single"])[1]

    def act(request: bytes, context: grpc.ServicerContext) -> bytes:
        session.run(["action"], {"observations": observation})
        return response

    def roundtrip(request: pb.ActRequest, context: grpc.ServicerContext) -> pb.ActResponse:
        return answer_act(session, request)

    service, method = ACT_METHOD.strip("/").split("/")
    handler = (
        grpc.unary_unary_rpc_method_handler(
            roundtrip, pb.ActRequest.FromString, pb.ActResponse.SerializeToString
        )
        if kind == "roundtrip"
        else grpc.unary_unary_rpc_method_handler(act)
    )
    handlers = {method: handler}
    threads = ThreadPoolExecutor if kind == "futures" else RpcThreads
    pool = threads(config.workers, thread_name_prefix="gymserve-rpc")
    server = grpc.server(pool, options=server_options(config))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def serve_gymserve(policy_path: Path):
    """`gymserve serve --policy mlp=PATH` with every other setting at its default."""
    from gymserve.serving.server.config import ServerConfig
    from gymserve.serving.server.policy_server import PolicyServer

    return PolicyServer(ServerConfig(address="127.0.0.1:0", policies={POLICY_NAME: policy_path}))


class RayPolicy:
    """A Ray Serve replica answering PolicyService.Act with the model on onnxruntime."""

    def __init__(self, policy_path: str):
        self._session = bare_session(Path(policy_path))

    def Act(self, request):
        return answer_act(self._session, request)


def serve_ray(policy_path: Path) -> str:
    """Ray Serve on this machine's CPUs, its gRPC proxy on a free loopback port."""
    import ray
    from ray import serve
    from ray.serve.config import HTTPOptions, gRPCOptions

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    grpc_port = _free_port()
    serve.start(
        http_options=HTTPOptions(host="127.0.0.1", port=_free_port()),
        grpc_options=gRPCOptions(
            port=grpc_port,
            grpc_servicer_functions=[
                "gymserve.serving.v1.policy_service_pb2_grpc.add_PolicyServiceServicer_to_server"
            ],
        ),
    )
    deployment = serve.deployment(RayPolicy, max_ongoing_requests=max(CLIENT_COUNTS))
    serve.run(deployment.bind(str(policy_path)), name=POLICY_NAME, route_prefix=f"/{POLICY_NAME}")
    return f"127.0.0.1:{grpc_port}"


def stop_servers(processes: Sequence[subprocess.Popen]) -> None:
    """Close the server processes' stdin (their signal to stop) and wait for them to end."""
    for process in processes:
        process.stdin.close()
    for process in processes:
        process.wait(timeout=120)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(kind: str, policy_path: Path) -> None:
    """A server process: its address on stdout, stop on stdin EOF."""
    if kind == "gymserve":
        with serve_gymserve(policy_path) as server:
            print(server.address, flush=True)
            sys.stdin.read()
    elif kind in ("floor", "futures", "roundtrip"):
        server, address = serve_floor(policy_path, kind)
        print(address, flush=True)
        sys.stdin.read()
        server.stop(0)
    else:
        print(serve_ray(policy_path), flush=True)
        sys.stdin.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per cell and round")
    parser.add_argument("--rounds", type=int, default=3, help="times every cell is measured")
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(DEFAULT_SERVERS))
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], Path(args.serve[1]))
        return

    with tempfile.TemporaryDirectory() as directory:
        policy_path = export_mlp(Path(directory))
        request = payloads(policy_path, ECHOES["single"])[0]
        # Ray's replicas unpickle `RayPolicy`, which needs this directory's modules
        python_path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
        processes = {
            kind: subprocess.Popen(
                [sys.executable, __file__, "--serve", kind, str(policy_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path},
            )
            for kind in args.servers
        }
        try:
            addresses = {kind: process.stdout.readline().strip() for kind, process in processes.items()}
            totals = {(c, kind): [0, []] for c in CLIENT_COUNTS for kind in args.servers}
            server_cpu = {cell: 0.0 for cell in totals}
            for _ in range(args.rounds):
                for clients in CLIENT_COUNTS:
                    for kind in args.servers:
                        # Ray answers from processes of its own, not the one started here
                        server_pids = () if kind == "ray" else (processes[kind].pid,)
                        count, latencies, cpu_seconds = measure(
                            addresses[kind], request, clients, args.seconds, METADATA, server_pids
                        )
                        server_cpu[(clients, kind)] += cpu_seconds
                        totals[(clients, kind)][0] += count
                        totals[(clients, kind)][1] += latencies
        finally:
            stop_servers(list(processes.values()))

    print(
        f"loopback, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"{args.rounds} x {args.seconds:g} s per cell, one-observation Act ({len(request)} B)"
    )
    print(f"{'server':<9} {'clients':>7} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/call':>12}")
    rate, p50, cpu_per_call = {}, {}, {}
    for (clients, kind), (calls, median, p99) in cell_figures(totals, args.rounds * args.seconds).items():
        rate[(clients, kind)], p50[(clients, kind)] = calls, median
        cpu_column = "-"
        if kind != "ray":  # Ray's proxy and replica run in processes of their own
            cpu_per_call[(clients, kind)] = server_cpu[(clients, kind)] / totals[(clients, kind)][0] * 1e6
            cpu_column = f"{cpu_per_call[(clients, kind)]:.0f}"
        print(f"{kind:<9} {clients:>7} {calls:>9,.0f} {median:>8.3f} {p99:>8.3f} {cpu_column:>12}")
    goals = [
        ("p50", "ray", 1, "<= 0.2"),
        ("p50", "ray", 64, "<= 0.2"),
        ("calls/s", "ray", 1, ""),
        ("calls/s", "ray", 64, ">= 5"),
        ("p50", "floor", 1, "<= 1.10"),
        ("p50", "floor", 64, ""),
        ("calls/s", "floor", 16, ">= 0.9"),
        ("calls/s", "floor", 64, ">= 0.9"),
    ]
    for what, peer, clients, goal in goals:
        if {"gymserve", peer} <= set(args.servers):
            figures = p50 if what == "p50" else rate
            ratio = figures[(clients, "gymserve")] / figures[(clients, peer)]
            goal_note = f"(goal {goal})" if goal else ""
            print(f"gymserve {what} / {peer} {what}, {clients:>2} clients: {ratio:6.2f}   {goal_note}")
    for kind in ("gymserve", "futures", "roundtrip"):
        if {kind, "floor"} <= set(args.servers):
            for clients in (16, 64):
                calls = rate[(clients, kind)] / rate[(clients, "floor")]
                cpu = cpu_per_call[(clients, kind)] / cpu_per_call[(clients, "floor")]
                print(f"{kind} / floor, {clients:>2} clients: calls/s {calls:5.2f}, CPU per call {cpu:5.2f}")


if __name__ == "__main__":
    main()
