"""Where the time of one HTTP policy call goes on the server, stage by stage, beside the bare floor's work.

    python benchmarks/http_breakdown.py [--calls 3000]

Builds the HTTP port's routes on a `PolicyServer` (no socket is served) for the model of
`protocol_peers` and times, in this process, the median of each stage a request to
/v2/models/mlp/infer and /v1/models/mlp:predict goes through: JSON decoding, routing, the route
handler (observation parsing, version lookup, the policy call, answer building), the metrics of
the call, JSON encoding, and the hand-off of the handler to the HTTP worker threads and back
(an empty function run through the event loop's executor). Beside them: the floor's whole work
(`protocol_peers.infer_floor`) and the bare model call. Stages are timed alone, so they need not
sum to a call; what matters is which of them is large against the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from protocol_peers import INFER_PATH, POLICY_NAME, PREDICT_PATH, infer_floor, oip_json, predict_json
from serving_latency import ECHOES, bare_session, export_mlp


def median_us(function, calls: int) -> float:
    times = []
    for _ in range(calls):
        begin = time.perf_counter()
        function()
        times.append(time.perf_counter() - begin)
    return float(np.median(times)) * 1e6


def mean_us(function, calls: int) -> float:
    """The mean, for work done in bulk now and then (the metrics count their queue every 1024 calls),
    which a median leaves out."""
    begin = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - begin) / calls * 1e6


def handoff_us(workers, calls: int) -> float:
    """An empty function through `run_in_executor` and back, as `HttpServer` hands a policy call."""
    loop = asyncio.new_event_loop()

    async def once() -> None:
        await loop.run_in_executor(workers, int)

    try:
        return median_us(lambda: loop.run_until_complete(once()), calls)
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()

    from gymserve.serving.apis.http_protocol import JsonWithBytes
    from gymserve.serving.server.config import ServerConfig
    from gymserve.serving.server.policy_server import PolicyServer

    with tempfile.TemporaryDirectory() as directory:
        policy_path = export_mlp(Path(directory))
        config = ServerConfig(
            address="127.0.0.1:0", http_address="127.0.0.1:0", policies={POLICY_NAME: policy_path}
        )
        with PolicyServer(config) as server:
            http = server._http
            session = bare_session(policy_path)
            observation = ECHOES["single"][None]
            infer_body, predict_body = oip_json(), predict_json()

            class Request:  # what `HttpServer._route` reads of an aiohttp request
                method = "POST"

                def __init__(self, path: str):
                    self.path = path

            rows = {}
            for name, path, body in (
                ("v2 infer", INFER_PATH, infer_body),
                ("tfs predict", PREDICT_PATH, predict_body),
            ):
                route, groups = http._route(Request(path))
                document = orjson.loads(body)
                argument = JsonWithBytes(document) if route.binary else document
                answer = route.handler(groups, argument)
                answer = answer.document if isinstance(answer, JsonWithBytes) else answer
                rows[name] = {
                    "JSON decode": median_us(lambda body=body: orjson.loads(body), args.calls),
                    "routing": median_us(lambda path=path: http._route(Request(path)), args.calls),
                    "handler": median_us(
                        lambda route=route, groups=groups, argument=argument: route.handler(groups, argument),
                        args.calls,
                    ),
                    "metrics": median_us(
                        lambda: server.metrics.http.observe("oip_infer", "POST", 200, 0.001), args.calls
                    ),
                    "metrics, mean": mean_us(
                        lambda: server.metrics.http.observe("oip_infer", "POST", 200, 0.001), 64 * 1024
                    ),
                    "JSON encode": median_us(lambda answer=answer: orjson.dumps(answer), args.calls),
                }
            handoff = handoff_us(http._workers, args.calls)
            floor = median_us(lambda: infer_floor(session, infer_body), args.calls)
            model = median_us(lambda: session.run(["action"], {"observations": observation}), args.calls)

    print(f"median µs per call, {args.calls} calls each")
    print(f"{'stage':<14}" + "".join(f"{name:>13}" for name in rows))
    for stage in next(iter(rows.values())):
        print(f"{stage:<14}" + "".join(f"{row[stage]:>13.1f}" for row in rows.values()))
    print(f"{'hand-off':<14}{handoff:>13.1f}")
    print(f"floor's whole work (parse, model, answer): {floor:.1f}; bare model call: {model:.1f}")


if __name__ == "__main__":
    main()
