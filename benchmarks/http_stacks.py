"""HTTP stacks for the policy server's REST port: a JSON echo on loopback, calls/s and p50 latency.

Each stack serves `POST /echo` (the body parsed and written back as JSON) in a process of its
own; keep-alive clients in threads of this process post a small OIP-shaped body for a few
seconds. It also times the JSON codecs on that body. Run:

    python benchmarks/http_stacks.py --seconds 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import statistics
import threading
import time
import timeit

BODY = json.dumps(
    {
        "inputs": [
            {"name": "observations", "shape": [1, 4], "datatype": "FP32", "data": [0.1, -0.2, 0.03, 0.4]}
        ],
        "parameters": {"mode": "greedy"},
    }
).encode()


def _stdlib(port: int) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.dumps(json.loads(self.rfile.read(int(self.headers["Content-Length"])))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()


def _aiohttp(port: int) -> None:
    import orjson
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        body = orjson.dumps(orjson.loads(await request.read()))
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/echo", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _starlette(port: int) -> None:
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def echo(request: Request) -> Response:
        return Response(orjson.dumps(orjson.loads(await request.body())), media_type="application/json")

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


STACKS = {"stdlib ThreadingHTTPServer": _stdlib, "aiohttp": _aiohttp, "starlette + uvicorn": _starlette}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _load(port: int, clients: int, seconds: float) -> tuple[float, float]:
    """Calls per second and median latency (ms) of `clients` keep-alive clients posting BODY."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.perf_counter() + seconds

    def client(own: list[float]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        while (begin := time.perf_counter()) < stop:
            connection.request("POST", "/echo", BODY, {"Content-Type": "application/json"})
            connection.getresponse().read()
            own.append(time.perf_counter() - begin)
        connection.close()

    threads = [threading.Thread(target=client, args=(own,)) for own in latencies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [latency for own in latencies for latency in own]
    return len(every) / seconds, statistics.median(every) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print("| stack | clients | calls/s | p50 ms |\n|---|---|---|---|")
    for name, serve in STACKS.items():
        port = _free_port()
        process = multiprocessing.Process(target=serve, args=(port,), daemon=True)
        process.start()
        try:
            _wait_for(port)
            _load(port, 1, 0.5)  # warm up
            for clients in (1, 16):
                rate, p50 = _load(port, clients, args.seconds)
                print(f"| {name} | {clients} | {rate:.0f} | {p50:.2f} |", flush=True)
        finally:
            process.terminate()
            process.join()
    import orjson

    for codec, loads, dumps in (("json", json.loads, json.dumps), ("orjson", orjson.loads, orjson.dumps)):
        count = 20000
        seconds = timeit.timeit(lambda dumps=dumps, loads=loads: dumps(loads(BODY)), number=count)
        print(f"{codec}: decode + encode {seconds / count * 1e6:.1f} µs per body")


if __name__ == "__main__":
    main()
