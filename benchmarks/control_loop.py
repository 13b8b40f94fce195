"""Minitaur at 100 Hz over a slow link: a blocking client against the control loop.

    python benchmarks/control_loop.py [--steps 300] [--deadline-ms 5]

A `gymserve serve` process serves the pretrained Minitaur policy (ONNX) on 127.0.0.1; this
process runs the env and the client. Answers pass through a proxy that holds the server's bytes
for 0, 2, 5 or 15 ms of one-way delay (tests/serving/delay_proxy.py, imported by path). Each
cell plays one greedy episode of at most --steps steps, paced at 100 Hz, with:

    blocking   RemotePolicy: every step waits for its answer however late; "misses" counts the
               answers that came after the deadline (the step was late, not replaced)
    loop       ControlLoop: an answer later than the deadline is replaced by holding the last action

Printed per cell: episode return, steps, misses, and the p50/p99 of the step-period error
|actual period - 10 ms|. The blocking client's period stretches with the delay; the loop's stays.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import gymserve
from gymserve.serving import ControlLoop, PolicyClient
from gymserve.serving.client.control_loop import Histogram
from gymserve.serving.client.remote_policy import RemotePolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serving"))
from delay_proxy import DelayProxy

ENV_ID = "gymserve/Minitaur-v0"
RATE_HZ = 100.0
DELAYS_MS = (0, 2, 5, 15)
MINITAUR = Path(gymserve.__file__).parent / "pretrained" / "minitaur"


def start_server() -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "gymserve.cli", "serve", "--address", "127.0.0.1:0",
         "--policy", f"minitaur={MINITAUR}", "--backend", "onnx", "--log-level", "info"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    for line in server.stderr:
        event = json.loads(line)
        if event["event"] == "server_started":
            return server, event["address"]
    raise RuntimeError("the server exited before it started")


def blocking_cell(client: PolicyClient, env: gym.Env, steps: int, deadline_s: float) -> dict:
    """Paced like ControlLoop.run, but each step waits for its answer."""
    period_s = 1.0 / RATE_HZ
    period_errors = Histogram()
    misses, total_return, length, ended = 0, 0.0, 0, False
    with RemotePolicy(client, "minitaur") as policy:
        policy.reset()
        observation, _ = env.reset(seed=0)
        next_tick = last_step_at = time.perf_counter()
        while not ended and length < steps:
            time.sleep(max(0.0, next_tick - time.perf_counter()))
            taken_at = time.perf_counter()
            if length:
                period_errors.add(abs(taken_at - last_step_at - period_s))
            last_step_at = taken_at
            action = policy.action(observation).action
            misses += time.perf_counter() - taken_at > deadline_s
            observation, reward, terminated, truncated, _ = env.step(action)
            total_return += float(reward)
            length += 1
            ended = terminated or truncated
            next_tick = max(next_tick + period_s, time.perf_counter())
    return {
        "return": total_return,
        "steps": length,
        "misses": misses,
        "p50": period_errors.percentile(50),
        "p99": period_errors.percentile(99),
    }


def loop_cell(client: PolicyClient, env: gym.Env, steps: int, deadline_s: float) -> dict:
    with ControlLoop(client, "minitaur", RATE_HZ, deadline_s, fallback="hold") as loop:
        episode = loop.run(env, steps, seed=0)
        stats = loop.stats()
    return {
        "return": episode.total_return,
        "steps": episode.length,
        "misses": stats.misses,
        "p50": stats.period_error_p50_s,
        "p99": stats.period_error_p99_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="steps per cell (default: %(default)s)")
    parser.add_argument(
        "--deadline-ms", type=float, default=5.0, help="the control loop's deadline (default: %(default)s)"
    )
    args = parser.parse_args()
    deadline_s = args.deadline_ms / 1e3
    env = gym.make(ENV_ID)
    server, address = start_server()
    rows = []
    try:
        for delay_ms in DELAYS_MS:
            with DelayProxy(address, delay_ms / 1e3) as proxy, PolicyClient(proxy.address) as client:
                client.act(np.zeros(28, np.float32), "minitaur")  # connect and warm up before timing
                for name, cell in (("blocking", blocking_cell), ("loop", loop_cell)):
                    rows.append((delay_ms, name, cell(client, env, args.steps, deadline_s)))
    finally:
        env.close()
        server.terminate()
        server.wait(timeout=30)
    print(f"{ENV_ID} at {RATE_HZ:g} Hz, deadline {args.deadline_ms:g} ms, up to {args.steps} steps per cell")
    print("| one-way delay | client | return | steps | misses | period error p50 | p99 |")
    print("|---|---|---|---|---|---|---|")
    for delay_ms, name, result in rows:
        print(
            f"| {delay_ms} ms | {name} | {result['return']:.3f} | {result['steps']} | {result['misses']} | "
            f"{result['p50'] * 1e3:.2f} ms | {result['p99'] * 1e3:.2f} ms |"
        )


if __name__ == "__main__":
    main()
