"""The Open Inference Protocol and TF Serving REST APIs against our Act, a bare HTTP floor and Ray Serve.

    python benchmarks/protocol_peers.py --suite oip|http [--seconds 2] [--rounds 3]
        [--client-processes 2] [--targets TARGET ...] [--clients N ...] [--quick]

The same exported ONNX model as `serving_peers` (the Minitaur-sized MLP, one observation per
call) is served in processes of its own on loopback, and every target of a suite is measured at
1, 16 and 64 clients, once per round, the targets alternating inside each round so that load
from other processes weighs on all alike. The clients are threads spread over
`--client-processes` processes (one channel or keep-alive connection each), so one client
interpreter's GIL does not cap the server; all send the same pre-serialized request back to back.

suite oip, both on one `gymserve serve` (gRPC port):
    act          PolicyService.Act
    modelinfer   GRPCInferenceService.ModelInfer (typed FP32 contents)
    goal: ModelInfer p50 (1 client) and calls/s (16, 64 clients) within 1.15x of Act's

suite http:
    floor        aiohttp + orjson (the stack of the HTTP port), one route that parses the v2 infer
                 JSON, runs the model on a bare onnxruntime session on the event loop and answers
                 its v2 JSON: the least any server on this stack can do for the call
    oip          `gymserve serve --http` answering POST /v2/models/mlp/infer
    tfs          the same port answering POST /v1/models/mlp:predict ({"instances": [...]})
    ray          Ray Serve's HTTP proxy with one replica doing the floor's work (`.[bench]` extra)
    port, policy, calls, decode   (measured only when named in --targets)
                 the same port answering the v2 infer body through routes this script adds to
                 the gymserve process as one more HTTP protocol, after the real ones: the version
                 lookup and the floor's work, with the model called as gymserve's runner calls it
                 (port); the policy's `action`, its checks around the model (policy); then
                 through `PolicyCalls.run` and `core.infer` (calls); then with the v2 route's
                 decoding and checks of the request (decode); oip adds the rest. What a part costs
                 on served calls is the difference between a stage's p50 or CPU per call and the
                 stage's before it
    goals: oip and tfs p50 <= 1.2x the floor's (1 client), calls/s >= 0.8x the floor's (16 and
    64 clients), calls/s >= 5x Ray's at 16 clients

Printed per cell: calls/s, p50, p99, and the CPU time per call of the server process (from /proc,
"-" for Ray, whose proxy and replica are processes of their own); then the goals' ratios, over
all rounds pooled and as the median and range of the ratios within each round.
`--quick` is one round of 1 s, to see that everything runs.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from serving_latency import ECHOES, bare_session, export_mlp, payloads
from serving_peers import POLICY_NAME, _free_port, stop_servers
from serving_throughput import ACT_METHOD, cell_figures, process_cpu_seconds

from gymserve.serving.apis.http_protocol import HttpProtocol, HttpRoute, JsonWithBytes

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.apis.protocol import ProtocolContext
    from gymserve.serving.server.served_policies import ServedVersion

CLIENT_COUNTS = (1, 16, 64)
MODEL_INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
INFER_PATH = f"/v2/models/{POLICY_NAME}/infer"
PREDICT_PATH = f"/v1/models/{POLICY_NAME}:predict"
RAY_PATH = f"/{POLICY_NAME}"
STAGES = ("port", "policy", "calls", "decode")  # each adds one part of the v2 infer route to the floor
SUITES = {"oip": ("act", "modelinfer"), "http": ("floor", "oip", "tfs", "ray")}  # STAGES: with --targets
SERVER_OF = {"act": "gymserve", "modelinfer": "gymserve", "oip": "gymserve", "tfs": "gymserve"}
SERVER_OF |= {"floor": "floor", "ray": "ray"} | dict.fromkeys(STAGES, "gymserve")


@dataclass(frozen=True)
class Target:
    """What a client calls: a gRPC method or an HTTP path at `address`, with the same bytes each time."""

    address: str  # HOST:PORT
    path: str  # the gRPC method, or the HTTP path (then `http` is True)
    body: bytes
    http: bool


def oip_json() -> bytes:
    """The v2 infer body of the benchmark's observation, as a client writes it."""
    import orjson

    observation = ECHOES["single"]
    tensor = {"name": "observations", "shape": [1, observation.size], "datatype": "FP32"}
    return orjson.dumps({"inputs": [tensor | {"data": observation.tolist()}]})


def predict_json() -> bytes:
    import orjson

    return orjson.dumps({"instances": [ECHOES["single"].tolist()]})


def model_infer_request() -> bytes:
    from gymserve.serving.apis.inference import grpc_service_pb2 as pb

    observation = ECHOES["single"]
    request = pb.ModelInferRequest(model_name=POLICY_NAME)
    tensor = request.inputs.add(name="observations", datatype="FP32", shape=[1, observation.size])
    tensor.contents.fp32_contents.extend(observation.tolist())
    return request.SerializeToString()


def targets(kind: str, addresses: dict[str, list[str]], policy_path: Path) -> Target:
    server = addresses[SERVER_OF[kind]]
    if kind == "act":
        return Target(server[0], ACT_METHOD, payloads(policy_path, ECHOES["single"])[0], False)
    if kind == "modelinfer":
        return Target(server[0], MODEL_INFER_METHOD, model_infer_request(), False)
    if kind == "tfs":
        return Target(server[1], PREDICT_PATH, predict_json(), True)
    if kind in STAGES:
        return Target(server[1], f"/stages/{kind}{INFER_PATH}", oip_json(), True)
    return Target(server[-1], RAY_PATH if kind == "ray" else INFER_PATH, oip_json(), True)


# --- servers, each in a process of its own: addresses on stdout, stop on stdin EOF ---


def serve_gymserve(policy_path: Path) -> None:
    from gymserve.serving import apis
    from gymserve.serving.server.config import ServerConfig
    from gymserve.serving.server.policy_server import PolicyServer

    apis.HTTP_PROTOCOLS.append("protocol_peers:STAGE_PROTOCOL")  # last: the real routes keep their order
    config = ServerConfig(
        address="127.0.0.1:0", http_address="127.0.0.1:0", policies={POLICY_NAME: policy_path}
    )
    with PolicyServer(config) as server:
        print(server.address, server.http_address, flush=True)
        sys.stdin.read()


def infer_floor(session, body: bytes) -> bytes:
    """The v2 infer answer for a v2 infer body: parse, run the model, write; nothing checked."""
    import orjson

    actions = session.run(["action"], {"observations": floor_observations(orjson.loads(body))})[0]
    return orjson.dumps(floor_answer(actions, actions.ravel()), option=orjson.OPT_SERIALIZE_NUMPY)


def floor_observations(document: dict) -> np.ndarray:
    """The observations of a v2 infer body as the floor reads them: its one input, unchecked."""
    tensor = document["inputs"][0]
    return np.asarray(tensor["data"], np.float32).reshape(tensor["shape"])


def floor_answer(actions: np.ndarray, data: object) -> dict:
    """The floor's v2 answer: the action output, its values given as `data`."""
    output = {"name": "action", "shape": list(actions.shape), "datatype": "FP32", "data": data}
    return {"model_name": POLICY_NAME, "outputs": [output]}


def stage_routes(context: ProtocolContext) -> tuple[HttpRoute, ...]:
    """The v2 infer routes of `STAGES`: each resolves the served version, works out the actions
    with one more part of the real route than the stage before it, and answers the floor's JSON."""
    from gymserve.serving.apis.http_protocol import NAME, NoDeadline
    from gymserve.serving.apis.open_inference import core
    from gymserve.serving.apis.open_inference.rest_protocol import OpenInferenceRest

    session = bare_session(context.config.policies[POLICY_NAME])
    run_model = getattr(session, "_sess", session).run  # the call gymserve's ONNX runner makes
    rest = OpenInferenceRest(context.calls)

    def through_calls(served: ServedVersion, observations: np.ndarray) -> np.ndarray:
        def infer(policy: Policy) -> dict[str, np.ndarray]:  # as the v2 route's call
            return core.infer(policy, observations, {}, core.GREEDY, ["action"])

        return context.calls.run(served, len(observations), NoDeadline(), infer)["action"]

    def port(served: ServedVersion, body: JsonWithBytes) -> np.ndarray:
        return run_model(["action"], {"observations": floor_observations(body.document)}, None)[0]

    def policy_action(served: ServedVersion, body: JsonWithBytes) -> np.ndarray:
        return served.policy.action(floor_observations(body.document)).action

    def calls(served: ServedVersion, body: JsonWithBytes) -> np.ndarray:
        return through_calls(served, floor_observations(body.document))

    def decode(served: ServedVersion, body: JsonWithBytes) -> np.ndarray:
        # the route's own decoding and checks, a private method: what is timed is that method in place
        observations = rest._observations(body.document.get("inputs"), served.policy, body.data)
        return through_calls(served, observations)

    def route(stage: str, choose: Callable[[ServedVersion, JsonWithBytes], np.ndarray]) -> HttpRoute:
        def answer(path: Mapping[str, str], body: JsonWithBytes) -> dict:
            actions = choose(context.calls.resolve(path["name"], None, ""), body)
            return floor_answer(actions, actions.ravel().tolist())

        return HttpRoute(
            "POST", f"/stages/{stage}/v2/models/{NAME}/infer", f"stage_{stage}", answer, binary=True
        )

    chosen_by = {"port": port, "policy": policy_action, "calls": calls, "decode": decode}
    return tuple(route(stage, chosen_by[stage]) for stage in STAGES)


STAGE_PROTOCOL = HttpProtocol(name="protocol_peers_stages", routes=stage_routes)


def serve_floor(policy_path: Path) -> None:
    import asyncio

    from aiohttp import web

    session = bare_session(policy_path)

    async def infer(request: web.Request) -> web.Response:
        return web.Response(body=infer_floor(session, await request.read()), content_type="application/json")

    app = web.Application()
    app.router.add_post(INFER_PATH, infer)
    runner = web.AppRunner(app, access_log=None)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.setup())
    port = _free_port()
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    print(f"127.0.0.1:{port}", flush=True)
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    loop.run_until_complete(stdin_closed)
    loop.run_until_complete(runner.cleanup())


class RayInfer:
    """A Ray Serve replica answering the floor's route with the floor's work."""

    def __init__(self, policy_path: str):
        self._session = bare_session(Path(policy_path))

    async def __call__(self, request):
        from starlette.responses import Response

        return Response(infer_floor(self._session, await request.body()), media_type="application/json")


def serve_ray(policy_path: Path) -> None:
    import ray
    from ray import serve
    from ray.serve.config import HTTPOptions

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    port = _free_port()
    serve.start(http_options=HTTPOptions(host="127.0.0.1", port=port))
    deployment = serve.deployment(RayInfer, max_ongoing_requests=max(CLIENT_COUNTS))
    serve.run(deployment.bind(str(policy_path)), name=POLICY_NAME, route_prefix=RAY_PATH)
    print(f"127.0.0.1:{port}", flush=True)
    sys.stdin.read()


SERVERS = {"gymserve": serve_gymserve, "floor": serve_floor, "ray": serve_ray}


# --- clients ---


def _caller(target: Target):
    """A function making one call to `target` on a connection of its own, and one closing it."""
    host, _, port = target.address.rpartition(":")
    if target.http:
        connection = http.client.HTTPConnection(host, int(port))
        headers = {"Content-Type": "application/json"}

        def call() -> None:
            connection.request("POST", target.path, target.body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{target.path} answered {response.status}")

        return call, connection.close
    import grpc

    channel = grpc.insecure_channel(target.address)
    method = channel.unary_unary(target.path)
    return (lambda: method(target.body, timeout=30)), channel.close


def client_process(connection) -> None:
    """Runs the cells the parent sends, (target, threads) then (start, stop), answering their latencies."""
    while (job := connection.recv()) is not None:
        target, threads = job
        callers = [_caller(target) for _ in range(threads)]
        for call, _ in callers:
            call()  # connect before timing
        connection.send("ready")
        start_at, stop_at = connection.recv()
        latencies: list[list[float]] = [[] for _ in callers]

        def client(call, own: list[float], start_at: float = start_at, stop_at: float = stop_at) -> None:
            while (now := time.monotonic()) < start_at:
                time.sleep(min(start_at - now, 0.01))
            while (begin := time.monotonic()) < stop_at:
                call()
                own.append(time.monotonic() - begin)

        pairs = zip(callers, latencies, strict=True)
        workers = [threading.Thread(target=client, args=(call, own)) for (call, _), own in pairs]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        for _, close in callers:
            close()
        connection.send([latency for own in latencies for latency in own])


def measure(pipes, target: Target, clients: int, seconds: float, watched: tuple[int, ...]):
    """Calls, their latencies and the CPU seconds of `watched` for `clients` over the client processes."""
    shares = [clients // len(pipes) + (i < clients % len(pipes)) for i in range(len(pipes))]
    busy = [(pipe, share) for pipe, share in zip(pipes, shares, strict=True) if share]
    for pipe, share in busy:
        pipe.send((target, share))
    for pipe, _ in busy:
        pipe.recv()
    start_at = time.monotonic() + 0.05
    for pipe, _ in busy:
        pipe.send((start_at, start_at + seconds))
    time.sleep(0.05)
    cpu_before = sum(map(process_cpu_seconds, watched))
    latencies = [latency for pipe, _ in busy for latency in pipe.recv()]
    cpu_seconds = sum(map(process_cpu_seconds, watched)) - cpu_before
    return len(latencies), latencies, cpu_seconds


GOALS = {
    "oip": [
        ("p50", "modelinfer", "act", 1, "<= 1.15"),
        ("calls/s", "modelinfer", "act", 16, ">= 0.87"),
        ("calls/s", "modelinfer", "act", 64, ">= 0.87"),
    ],
    "http": [
        (what, kind, peer, clients, goal)
        for kind in ("oip", "tfs")
        for what, peer, clients, goal in (
            ("p50", "floor", 1, "<= 1.2"),
            ("calls/s", "floor", 16, ">= 0.8"),
            ("calls/s", "floor", 64, ">= 0.8"),
            ("calls/s", "ray", 16, ">= 5"),
            ("calls/s", "ray", 64, ""),
        )
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=SUITES, required=True)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per cell and round")
    parser.add_argument("--rounds", type=int, default=3, help="times every cell is measured")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--targets", nargs="+", help="a subset of the suite's targets")
    parser.add_argument("--clients", nargs="+", type=int, default=list(CLIENT_COUNTS))
    parser.add_argument("--quick", action="store_true", help="one round of 1 s per cell")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        SERVERS[args.serve[0]](Path(args.serve[1]))
        return
    if args.quick:
        args.rounds, args.seconds = 1, 1.0
    kinds = args.targets or list(SUITES[args.suite])

    context = multiprocessing.get_context("spawn")
    pipes, clients = [], []
    for _ in range(args.client_processes):
        parent, child = context.Pipe()
        clients.append(context.Process(target=client_process, args=(child,), daemon=True))
        clients[-1].start()
        pipes.append(parent)
    with tempfile.TemporaryDirectory() as directory:
        policy_path = export_mlp(Path(directory))
        python_path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
        processes = {
            server: subprocess.Popen(
                [sys.executable, __file__, "--suite", args.suite, "--serve", server, str(policy_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path},
            )
            for server in dict.fromkeys(SERVER_OF[kind] for kind in kinds)
        }
        try:
            addresses = {server: process.stdout.readline().split() for server, process in processes.items()}
            calls = {kind: targets(kind, addresses, policy_path) for kind in kinds}
            totals = {(c, kind): [0, []] for c in args.clients for kind in kinds}
            server_cpu = dict.fromkeys(totals, 0.0)
            rounds = []  # each round's own [calls, latencies] per cell, for the paired ratios
            for kind in kinds:  # warm up every path once
                measure(pipes, calls[kind], 1, 0.2, ())
            for _ in range(args.rounds):
                rounds.append({})
                for clients_count in args.clients:
                    for kind in kinds:
                        server = SERVER_OF[kind]
                        watched = () if server == "ray" else (processes[server].pid,)
                        count, latencies, cpu = measure(
                            pipes, calls[kind], clients_count, args.seconds, watched
                        )
                        rounds[-1][(clients_count, kind)] = [count, latencies]
                        totals[(clients_count, kind)][0] += count
                        totals[(clients_count, kind)][1] += latencies
                        server_cpu[(clients_count, kind)] += cpu
        finally:
            for pipe in pipes:
                pipe.send(None)
            stop_servers(list(processes.values()))

    print(
        f"loopback, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.rounds} x "
        f"{args.seconds:g} s per cell, {args.client_processes} client processes, one observation per call"
    )
    print(f"{'target':<10} {'clients':>7} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/call':>12}")
    rate, p50 = {}, {}
    for (clients_count, kind), (per_second, median, p99) in cell_figures(
        totals, args.rounds * args.seconds
    ).items():
        rate[(clients_count, kind)], p50[(clients_count, kind)] = per_second, median
        cpu = "-"
        if SERVER_OF[kind] != "ray":
            cpu = f"{server_cpu[(clients_count, kind)] / totals[(clients_count, kind)][0] * 1e6:.0f}"
        print(f"{kind:<10} {clients_count:>7} {per_second:>9,.0f} {median:>8.3f} {p99:>8.3f} {cpu:>12}")
    print_goals(GOALS[args.suite], kinds, args.clients, (rate, p50), rounds, args.seconds)


def print_goals(goals, kinds, client_counts, pooled, rounds: list[dict], seconds: float) -> None:
    """Each goal's ratio over all rounds pooled, and the median and range of its ratio within each
    round: the two sides of a round's ratio ran back to back, seconds apart, so a load that comes
    and goes moves both alike, while it can favour one side of the pooled ratio. A round in which
    either side answered no call is left out of the median."""
    rows = []
    for what, kind, peer, clients_count, goal in goals:
        if not ({kind, peer} <= set(kinds) and clients_count in client_counts):
            continue
        column = 1 if what == "p50" else 0  # of cell_figures' (calls/s, p50, p99)
        cells = [(clients_count, kind), (clients_count, peer)]
        answered = [{cell: cells_of_round[cell] for cell in cells} for cells_of_round in rounds]
        per_round = [cell_figures(pair, seconds) for pair in answered if all(c for c, _ in pair.values())]
        ratios = [figures[cells[0]][column] / figures[cells[1]][column] for figures in per_round]
        ratio = pooled[column][cells[0]] / pooled[column][cells[1]]
        label = f"{kind} {what} / {peer}, {clients_count} client{'s' if clients_count > 1 else ''}"
        median, spread = "-", "-"
        if ratios:
            median, spread = f"{np.median(ratios):.2f}", f"{min(ratios):.2f}-{max(ratios):.2f}"
        rows.append((label, f"{ratio:.2f}", median, spread, goal))
    width = max((len(row[0]) for row in rows), default=0)
    print(f"{'ratio':<{width}} {'pooled':>7} {'median of rounds':>17} {'range':>12}   goal")
    for label, ratio, median, spread, goal in rows:
        print(f"{label:<{width}} {ratio:>7} {median:>17} {spread:>12}   {goal}")


if __name__ == "__main__":
    main()
