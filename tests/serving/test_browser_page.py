"""The page on the HTTP port, in a real headless Chromium against a real `gymserve serve`.

The served pretrained CartPole policy plays CartPole in the page: greedy, it balances the pole
for the 500 steps of CartPole-v1, each step the page simulated is Gymnasium's own step, and
each action is the policy's greedy action; switched to stochastic, the page shows it and its
requests say so. The files are public, exactly the shipped ones, and no other path reaches
a file; the status the page polls needs the token and reports the series Prometheus scrapes.
"""

from __future__ import annotations

import bisect
import http.client
import importlib.resources
import json
import math
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from serving_support import skip_unless_ci

from gymserve.policies import load
from gymserve.pretrained import pretrained_policy_for_env
from tools.browser_page import HeadlessChromium, chromium_executable, served_page, until

TOKEN = "page-test-token"
STATIC = importlib.resources.files("gymserve.serving.apis.browser_page") / "static"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`gymserve serve` with the pretrained policies, a bearer token, HTTP and metrics ports."""
    with served_page(tmp_path_factory.mktemp("server") / "server.log", token=TOKEN) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[HeadlessChromium]:
    executable = chromium_executable()
    if executable is None:
        skip_unless_ci("the page test needs Chromium, not installed (Debian: apt-get install chromium)")
    chromium = HeadlessChromium(executable)
    yield chromium
    chromium.close()


def get(server: dict[str, Any], path: str, token: str | None = None) -> http.client.HTTPResponse:
    """GET `path` exactly as written (no client-side normalisation of `..` or escapes)."""
    host, port = server["http_address"].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


@pytest.mark.parametrize(
    ("path", "name", "content_type"),
    [
        ("/", "index.html", "text/html"),
        ("/ui/", "index.html", "text/html"),
        ("/ui", "index.html", "text/html"),
        ("/ui/page.js", "page.js", "text/javascript"),
        ("/ui/page.css", "page.css", "text/css"),
    ],
)
def test_the_page_files_are_public_and_exactly_the_shipped_ones(
    server: dict[str, Any], path: str, name: str, content_type: str
):
    response = get(server, path)
    assert response.status == 200
    assert response.body == (STATIC / name).read_bytes()
    assert response.getheader("Content-Type") == f"{content_type}; charset=utf-8"
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    assert response.getheader("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../pyproject.toml",
        "/ui/%2e%2e/protocol.py",
        "/ui/..%2fprotocol.py",
        "/ui/..%2F..%2F..%2Fpyproject.toml",
        "/ui/static/page.js",
        "/ui/protocol.py",
        "/ui/__init__.py",
        "/ui//etc/passwd",
        "/ui/page.js/..",
        "/ui/%70age.js%00.html",
        "/index.html",
        "/page.js",
    ],
)
def test_no_other_path_reaches_a_file(server: dict[str, Any], path: str):
    for token in (None, TOKEN):
        response = get(server, path, token)
        assert response.status == 404, path
        assert json.loads(response.body)["error"].startswith("no route for ")


def test_status_needs_the_token_and_reports_the_series_prometheus_scrapes(server: dict[str, Any]):
    refused = get(server, "/ui/status")
    assert refused.status == 401
    assert json.loads(refused.body) == {"error": "missing 'authorization: Bearer <token>' header"}
    assert get(server, "/ui/status", "wrong").status == 401

    for observation in ([0.01, 0.0, 0.02, 0.0], [0.1, 0.5, -0.2, -0.4], [0.0, -0.3, 0.05, 0.6]):
        tensor = {"name": "observations", "shape": [1, 4], "datatype": "FP32", "data": observation}
        request = urllib.request.Request(
            f"http://{server['http_address']}/v2/models/cartpole/infer",
            json.dumps({"inputs": [tensor]}).encode(),
            {"Authorization": f"Bearer {TOKEN}"},
        )
        urllib.request.urlopen(request, timeout=10).read()
    status = json.loads(get(server, "/ui/status", TOKEN).body)
    metrics = f"http://{server['metrics_address']}/metrics"
    scraped = urllib.request.urlopen(metrics, timeout=10).read().decode()

    policies = {policy["name"]: policy for policy in status["policies"]}
    assert set(policies) == {"cartpole", "minitaur", "pong"}
    assert policies["cartpole"]["env_id"] == "gymserve/CartPole-v1"
    assert policies["cartpole"]["versions"] == [
        {"version": "1", "state": "AVAILABLE", "labels": [], "error": ""}
    ]
    (cartpole,) = [s for s in status["policy_requests"] if s["policy"] == "cartpole"]
    assert cartpole["count"] >= 3
    assert cartpole["count"] == prometheus_value(
        scraped, 'gymserve_policy_request_seconds_count{policy="cartpole",version="1"}'
    )
    assert cartpole["seconds"] == prometheus_value(
        scraped, 'gymserve_policy_request_seconds_sum{policy="cartpole",version="1"}'
    )
    bounds = [bound for bound, _ in cartpole["buckets"]]
    assert bounds[-1] is None and bounds[:-1] == sorted(bounds[:-1])  # ascending, +Inf last
    for bound, count in cartpole["buckets"]:
        le = "+Inf" if bound is None else repr(bound)
        series = f'gymserve_policy_request_seconds_bucket{{le="{le}",policy="cartpole",version="1"}}'
        assert count == prometheus_value(scraped, series)
    assert cartpole["buckets"][-1][1] == cartpole["count"]
    (infers,) = [s for s in status["http_requests"] if s["route"] == "oip_infer" and s["code"] == "200"]
    assert infers["count"] == prometheus_value(
        scraped, 'gymserve_http_request_seconds_count{code="200",method="POST",route="oip_infer"}'
    )
    assert {"route": "page_status", "method": "GET", "code": "401"}.items() <= next(
        s for s in status["http_requests"] if s["route"] == "page_status" and s["code"] == "401"
    ).items()


def prometheus_value(text: str, series: str) -> float:
    """The value of one series in Prometheus' text format (labels in the order the client writes them)."""
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{series} is not in the scrape"
    return float(match.group(1))


def open_page(browser: HeadlessChromium, server: dict[str, Any]) -> None:
    """The page with repeatable starting states, as a first visit finds it, then given the token."""
    url = f"http://{server['http_address']}/ui/?seed=7"
    browser.open(url)
    browser.evaluate("sessionStorage.clear()")  # where the page keeps a token typed in before
    browser.open(url)
    problem = browser.wait_for("document.getElementById('problem').textContent")
    assert "401" in problem and "bearer token" in problem
    browser.evaluate(
        f"document.getElementById('token').value = {json.dumps(TOKEN)};"
        "document.getElementById('token-form').requestSubmit()"
    )
    browser.wait_for("document.getElementById('policy').value === 'cartpole'")


def text_of(browser: HeadlessChromium, element: str) -> str:
    return browser.evaluate(f"document.getElementById({json.dumps(element)}).textContent")


def test_the_greedy_policy_balances_the_pole_for_500_steps_of_gymnasium_cartpole(
    browser: HeadlessChromium, server: dict[str, Any]
):
    open_page(browser, server)
    assert browser.evaluate("document.querySelector('input[name=mode]:checked').value") == "greedy"
    browser.evaluate("document.getElementById('fast').click()")
    browser.wait_for("window.gymservePage.game.outcome !== 'running' && !window.gymservePage.running", 60)

    assert text_of(browser, "steps") == "500"
    assert text_of(browser, "episode") == "finished: balanced for 500 steps"
    assert text_of(browser, "problem") == ""
    episode = browser.evaluate("window.gymservePage.game.episode")
    final_state = browser.evaluate("window.gymservePage.game.state")
    assert len(episode) == 500 and {step["mode"] for step in episode} == {"greedy"}

    states = np.array([step["observation"] for step in episode] + [final_state])
    actions = np.array([step["action"] for step in episode])
    assert np.all(np.abs(states[0]) <= 0.05)  # Gymnasium's starting range
    cartpole = gym.make("CartPole-v1").unwrapped
    cartpole.reset(seed=0)
    for state, action, next_state in zip(states[:-1], actions, states[1:], strict=True):
        cartpole.state = state.copy()
        _, _, terminated, _, _ = cartpole.step(int(action))
        np.testing.assert_allclose(cartpole.state, next_state, rtol=1e-12, atol=1e-15)
        assert not terminated
    policy = load(pretrained_policy_for_env("gymserve/CartPole-v1").path)
    greedy = policy.action(states[:-1].astype(np.float32)).action
    np.testing.assert_array_equal(actions, greedy)
    assert len(set(actions.tolist())) == 2  # a policy that always pushes one way fails within ~10 steps

    rows = until(lambda: (rows := policy_rows(browser)) and rows[0][5] != "-" and rows)  # two reads compared
    assert [tuple(row[:5]) for row in rows] == [
        ("cartpole", "gymserve/CartPole-v1", "1 (default)", "AVAILABLE", ""),
        ("minitaur", "gymserve/Minitaur-v0", "1 (default)", "AVAILABLE", ""),
        ("pong", "gymserve/AtariPong-v0", "1 (default)", "AVAILABLE", ""),
    ]
    assert float(rows[0][5]) >= 0 and float(rows[1][5]) == float(rows[2][5]) == 0  # only cartpole is asked


def policy_rows(browser: HeadlessChromium) -> list[list[str]]:
    return browser.evaluate(
        "[...document.querySelectorAll('#policies tr')]"
        ".map((row) => [...row.cells].map((cell) => cell.textContent))"
    )


def histogram_quantile(q: float, before: list, after: list) -> float | None:
    """Prometheus' histogram_quantile over the observations between two reads, in milliseconds."""
    bounds = [math.inf if bound is None else bound for bound, _ in after]
    counts = [count - earlier for (_, count), (_, earlier) in zip(after, before, strict=True)]
    if counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    index = bisect.bisect_left(counts, rank)
    lower, below = (0.0, 0.0) if index == 0 else (bounds[index - 1], counts[index - 1])
    if bounds[index] == math.inf:
        return lower * 1000
    return (lower + (bounds[index] - lower) * (rank - below) / (counts[index] - below)) * 1000


@pytest.mark.parametrize(
    ("q", "after", "expected_ms"),
    [
        (0.5, [[0.001, 2], [0.005, 6], [0.01, 10], [None, 10]], 4.0),  # 0.001 + 0.004 * 3/4
        (0.99, [[0.001, 2], [0.005, 6], [0.01, 10], [None, 10]], 9.875),  # 0.005 + 0.005 * 3.9/4
        (0.1, [[0.001, 2], [0.005, 6], [0.01, 10], [None, 10]], 0.5),  # from 0 in the first bucket
        (0.99, [[0.001, 2], [0.005, 6], [0.01, 8], [None, 10]], 10.0),  # +Inf: the largest bound
        (0.5, [[0.001, 0], [0.005, 0], [0.01, 0], [None, 0]], None),  # nothing observed
    ],
)
def test_the_page_interpolates_percentiles_in_the_buckets_as_prometheus_does(
    browser: HeadlessChromium, server: dict[str, Any], q: float, after: list, expected_ms: float | None
):
    open_page(browser, server)
    before = [[bound, 0] for bound, _ in after]
    page = browser.evaluate(f"window.gymserveLatencyQuantile({q}, {json.dumps(before)}, {json.dumps(after)})")
    assert page == pytest.approx(expected_ms) and histogram_quantile(q, before, after) == pytest.approx(
        expected_ms
    )


def test_the_page_shows_percentiles_of_the_served_requests(browser: HeadlessChromium, server: dict[str, Any]):
    open_page(browser, server)
    before = cartpole_buckets(server)
    sending = threading.Event()
    sender = threading.Thread(target=lambda: infer_until(server, sending), daemon=True)
    sender.start()
    try:  # the page compares two reads a second apart, each after requests
        rows = until(lambda: (rows := policy_rows(browser)) and rows[0][7] not in ("", "-") and rows, 30)
    finally:
        sending.set()
        sender.join()
    after = cartpole_buckets(server)
    median, p99 = float(rows[0][7]), float(rows[0][8])
    assert 0 < median <= p99
    for q in (0.5, 0.99):  # the served buckets, through the page's function and Prometheus' formula
        page = browser.evaluate(
            f"window.gymserveLatencyQuantile({q}, {json.dumps(before)}, {json.dumps(after)})"
        )
        assert page == pytest.approx(histogram_quantile(q, before, after))


def cartpole_buckets(server: dict[str, Any]) -> list:
    status = json.loads(get(server, "/ui/status", TOKEN).body)
    return next(s["buckets"] for s in status["policy_requests"] if s["policy"] == "cartpole")


def infer_until(server: dict[str, Any], stop: threading.Event) -> None:
    tensor = {"name": "observations", "shape": [1, 4], "datatype": "FP32", "data": [0.01, 0.0, 0.02, 0.0]}
    request = urllib.request.Request(
        f"http://{server['http_address']}/v2/models/cartpole/infer",
        json.dumps({"inputs": [tensor]}).encode(),
        {"Authorization": f"Bearer {TOKEN}"},
    )
    while not stop.is_set():
        urllib.request.urlopen(request, timeout=10).read()
        time.sleep(0.01)


def test_switching_to_stochastic_shows_it_and_sends_it(browser: HeadlessChromium, server: dict[str, Any]):
    open_page(browser, server)
    browser.command("Network.enable")
    browser.events.clear()
    browser.evaluate("document.querySelector('input[value=stochastic]').click()")
    assert text_of(browser, "mode") == "stochastic"
    browser.evaluate("document.getElementById('fast').click()")
    browser.wait_for("window.gymservePage.game.steps >= 20 || window.gymservePage.game.outcome !== 'running'")
    browser.evaluate("document.getElementById('pause').click()")
    browser.wait_for("!window.gymservePage.running")
    browser.command("Network.disable")

    steps = browser.evaluate("window.gymservePage.game.episode")
    assert steps and {step["mode"] for step in steps} == {"stochastic"}
    sent = [
        json.loads(event["params"]["request"]["postData"])
        for event in browser.events
        if event["method"] == "Network.requestWillBeSent"
        and event["params"]["request"]["url"].endswith("/v2/models/cartpole/infer")
    ]
    assert len(sent) >= len(steps)
    assert {json.dumps(body["parameters"]) for body in sent} == {'{"mode": "stochastic"}'}
    observations = [body["inputs"][0]["data"] for body in sent[: len(steps)]]
    assert observations == [step["observation"] for step in steps]
