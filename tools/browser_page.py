"""The server's page in a real browser: headless Chromium driven over the DevTools Protocol.

    python -m tools.browser_page docs/images/browser_page.png      (from the repository root)

starts `gymserve serve` with the pretrained policies and an HTTP port, lets the pretrained
CartPole policy play in the page for a few seconds, and saves a screenshot. The page's test
drives the browser with the same pieces. Chromium is Debian's (`apt-get install chromium`),
started with a fresh profile and nothing that reaches past this machine; the DevTools commands
go over its WebSocket with aiohttp's client, one at a time, collecting the events between.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)
VIEWPORT = (1360, 700)  # CSS pixels: the page's two columns side by side
COMMAND_SECONDS = 30.0
START_SECONDS = 30.0


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools command failed."""


def chromium_executable() -> str | None:
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


class HeadlessChromium:
    """One headless Chromium with one tab; `command` sends a DevTools command and waits for its answer."""

    def __init__(self, executable: str):
        self._profile = tempfile.TemporaryDirectory(prefix="gymserve-chromium-")
        self._process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._last_id = 0
        self.events: list[dict[str, Any]] = []  # {"method": ..., "params": ...}, oldest first
        try:
            self._loop.run_until_complete(self._connect(self._debugging_port()))
            self.command("Emulation.setDeviceMetricsOverride", width=VIEWPORT[0], height=VIEWPORT[1],
                         deviceScaleFactor=1, mobile=False)  # fmt: skip
        except BaseException:
            self.close()
            raise

    def _debugging_port(self) -> int:
        """The port Chromium writes to its profile once DevTools listens."""
        written = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + START_SECONDS
        while not written.exists() or not written.read_text().strip():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise BrowserError(
                    f"Chromium did not open its DevTools port (exit status {self._process.poll()})"
                )
            time.sleep(0.05)
        return int(written.read_text().split()[0])

    async def _connect(self, port: int) -> None:
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        tab = next(target for target in targets if target["type"] == "page")
        self._socket = await self._session.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0)

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        return self._loop.run_until_complete(asyncio.wait_for(self._command(method, params), COMMAND_SECONDS))

    async def _command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._last_id += 1
        await self._socket.send_json({"id": self._last_id, "method": method, "params": params})
        while True:
            message = await self._socket.receive_json()
            if message.get("id") == self._last_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message["result"]
            if "method" in message:
                self.events.append(message)

    def open(self, url: str) -> None:
        """Load `url` and wait until its scripts have run."""
        self.command("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && window.gymservePage !== undefined")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the tab (promises awaited)."""
        answer = self.command(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise BrowserError(
                f"{expression}: {answer['exceptionDetails'].get('exception', {}).get('description')}"
            )
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """The first truthy value of the JavaScript `expression`."""
        return until(lambda: self.evaluate(expression), timeout, expression)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.command("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
        self._loop.close()
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._profile.cleanup()


@contextmanager
def served_page(log: Path, token: str | None = None) -> Iterator[dict[str, Any]]:
    """`gymserve serve` with the pretrained policies, HTTP and metrics ports, logging to `log`.

    Yields its `server_started` event (`http_address`, `metrics_address`, ...); stops it on exit.
    """
    environment = {**os.environ, "GYMSERVE_AUTH_TOKEN": token} if token else None
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gymserve.cli", "serve", "--address", "127.0.0.1:0",
             "--http-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0"],
            stderr=log_file, env=environment,
        )  # fmt: skip
    try:
        yield _started_event(server, log)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _started_event(server: subprocess.Popen, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while server.poll() is None and time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line)["event"] == "server_started":
                return json.loads(line)
        time.sleep(0.1)
    raise BrowserError(f"the server did not start; it logged:\n{log.read_text()[-3000:]}")


def until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """The first truthy value of `condition()`, polled every 50 ms."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise BrowserError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.05)
    return value


def main(screenshot: Path) -> None:
    """The page after the pretrained CartPole policy has played for a few seconds at 50 Hz."""
    executable = chromium_executable()
    if executable is None:
        sys.exit(f"no Chromium on PATH ({', '.join(CHROMIUM_NAMES)}); Debian: apt-get install chromium")
    with tempfile.TemporaryDirectory() as folder, served_page(Path(folder) / "server.log") as started:
        browser = HeadlessChromium(executable)
        try:
            browser.open(f"http://{started['http_address']}/?seed=1")
            browser.wait_for("document.getElementById('policy').value === 'cartpole'")
            browser.evaluate("document.getElementById('play').click()")
            time.sleep(4.5)  # several status polls while the game plays: the tables show live rates
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(browser.screenshot())
        finally:
            browser.close()
    print(f"wrote {screenshot}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images/browser_page.png"))
