"""A TCP proxy on 127.0.0.1 that delays the server's bytes to the client, to stand in for a slow link.

    with DelayProxy("127.0.0.1:8500", delay_s=0.005) as proxy:
        client = PolicyClient(proxy.address)
        proxy.delay_s = 0.05                 # takes effect for bytes the server sends from now on

Client -> server bytes pass at once; each chunk the server sends is held until `delay_s` after it
arrived (in order: a chunk never overtakes an earlier one). Threads only; `close()` (or leaving
the `with`) stops them, and every socket wait has a short timeout so nothing outlives the proxy.
The benchmarks import this file by path too.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time

POLL_S = 0.05  # how often a waiting thread checks whether the proxy is closing


class DelayProxy:
    def __init__(self, server_address: str, delay_s: float = 0.0):
        host, port = server_address.rsplit(":", 1)
        self._server = (host, int(port))
        self.delay_s = delay_s
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_S)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        for connection in [self._listener, *self._sockets]:
            connection.close()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(self._server)
            self._sockets += [client, server]
            for connection in (client, server):  # as gRPC does: Nagle would hold small frames ~40 ms
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            held: queue.Queue[tuple[float, bytes]] = queue.Queue()
            for target, arguments in (
                (self._pump, (client, server, None)),
                (self._pump, (server, client, held)),
                (self._release, (held, client)),
            ):
                thread = threading.Thread(target=target, args=arguments, daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, target: socket.socket, held: queue.Queue | None) -> None:
        """Copy `source` to `target`, or into `held` stamped with its release time."""
        source.settimeout(POLL_S)
        release_at = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    chunk = source.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                if held is None:
                    target.sendall(chunk)
                else:
                    release_at = max(release_at, time.perf_counter() + self.delay_s)
                    held.put((release_at, chunk))
        except OSError:
            pass  # the other side went away; closing below ends the connection
        finally:
            if held is not None:
                held.put((0.0, b""))
            else:
                _shutdown(target)

    def _release(self, held: queue.Queue, target: socket.socket) -> None:
        """Send each held chunk at its release time; an empty chunk means the server closed."""
        try:
            while not self._stopping.is_set():
                try:
                    release_at, chunk = held.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if not chunk:
                    break
                time.sleep(max(0.0, release_at - time.perf_counter()))
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            _shutdown(target)


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
