"""The policy server: every protocol registered in `gymserve.serving.apis.PROTOCOLS`, and reflection.

All on one port: PolicyService, health and TensorFlow Serving's PredictionService (see
`gymserve.serving.apis`; a protocol whose optional package is missing is skipped with a log line).

    config = load_server_config(flags={"policies": {"cartpole": "exports/cartpole"}})
    server = PolicyServer(config)             # loads the exports
    server.wait_for_shutdown_signal()         # binds, starts; SIGTERM / SIGINT: drain, stop; SIGHUP: rescan

Health reports the overall service "" and each policy name: a name is SERVING while one of
its versions loaded, NOT_SERVING when none did (the other policies keep serving). Health
checks never need the bearer token; every other call does when a token is configured.

Every call passes through the interceptors, outermost first: the RPC threads' note that the
request has arrived, metrics (every RPC counted with its status), bearer-token auth, the stream
slot limits and idle timeouts, and request parsing from raw bytes. A repository is rescanned
every `poll_interval` seconds and on SIGHUP.

Shutdown always finishes: new calls are refused at once, calls in flight get the grace period,
then whatever still runs is cancelled; a second SIGTERM/SIGINT exits the process at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection

from gymserve.policies.repository import pretrained_repository
from gymserve.serving import apis
from gymserve.serving.apis.protocol import Protocol, ProtocolContext, load_protocols
from gymserve.serving.metrics.server_metrics import MetricsInterceptor, ServerMetrics
from gymserve.serving.server.auth import BearerTokenInterceptor
from gymserve.serving.server.batching import BatchScheduler
from gymserve.serving.server.config import ServerConfig, ServerConfigError
from gymserve.serving.server.logs import log_event
from gymserve.serving.server.policy_calls import PolicyCalls
from gymserve.serving.server.raw_requests import RawRequestInterceptor
from gymserve.serving.server.reloader import PolicyReloader, export_loader
from gymserve.serving.server.request_limits import RequestLimits
from gymserve.serving.server.rpc_threads import RequestReadInterceptor, RpcThreads
from gymserve.serving.server.served_policies import ServedPolicies
from gymserve.serving.server.signals import ServerSignals
from gymserve.serving.server.stream_limits import StreamLimitInterceptor

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_CANCEL_SECONDS = 5.0  # after the grace period: for cancelled calls and threads to wind down
# Calls waiting for their request bytes that are kept off the workers: each holds a sleeping
# thread (under 90 KiB resident); beyond this many, slow writers take workers again.
MAX_PARKED_CALLS = 4096


class PolicyServer:
    """A gRPC server answering for `policies`, or for the exports `config` names when None.

    Policies passed in are served as they are; exports named by the config are loaded at
    construction and kept in step with the disk while the server runs.
    """

    def __init__(self, config: ServerConfig, policies: ServedPolicies | None = None):
        self.config = config
        self.reloader = None if policies is not None else configured_reloader(config)
        self.policies = policies if policies is not None else self.reloader.served
        self.metrics = ServerMetrics(self.policies)
        self.protocols = _available_protocols()
        rpcs = [rpc for protocol in self.protocols for rpc in protocol.rpcs]
        for rpc in rpcs:  # every method's series shows from the start, at zero
            self.metrics.rpcs.add_method((rpc.kind, rpc.service, rpc.method))
        # Calls still waiting for their request bytes after a moment, and health Watch streams,
        # stop counting against the workers (see rpc_threads): slow writers and watchers take none.
        self._executor = RpcThreads(
            config.workers, thread_name_prefix="gymserve-rpc", max_parked=MAX_PARKED_CALLS
        )
        self._streams = StreamLimitInterceptor(
            config.max_streams,
            config.stream_idle_timeout,
            config.max_health_watches,
            config.health_watch_idle_timeout,
            self._executor.set_aside,
        )
        interceptors: list[grpc.ServerInterceptor] = [
            RequestReadInterceptor(self._executor),
            MetricsInterceptor(self.metrics),
        ]
        if config.auth_token:
            public = [rpc.path for rpc in rpcs if rpc.public]
            interceptors.append(BearerTokenInterceptor(config.auth_token.get_secret_value(), public))
        interceptors += [self._streams, RawRequestInterceptor()]
        self._server = grpc.server(self._executor, interceptors=interceptors, options=server_options(config))
        batching = config.batching
        scheduler = None if batching is None else BatchScheduler(batching, self.metrics.observe_model_batch)
        self._health = health.HealthServicer()
        context = ProtocolContext(
            calls=PolicyCalls(self.policies, RequestLimits.from_config(config), self.metrics, scheduler),
            metrics=self.metrics,
            config=config,
            health=self._health,
        )
        for protocol in self.protocols:
            protocol.register(self._server, context)
        reflected = [service for protocol in self.protocols for service in protocol.reflected_services]
        reflection.enable_server_reflection((*reflected, reflection.SERVICE_NAME), self._server)
        if self.reloader is not None:
            self.reloader.on_change = self.update_health
        self._address: str | None = None
        self.metrics_address: str | None = None
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        """HOST:PORT the server listens on (the real port when the config asked for port 0)."""
        if self._address is None:
            raise RuntimeError("the server is not started")
        return self._address

    def start(self) -> PolicyServer:
        host, _, _ = self.config.address.rpartition(":")
        try:
            port = self._bind()
        except BaseException:
            self._streams.stop()  # the watchdog the constructor started; nothing else runs yet
            raise
        self._address = f"{host}:{port}"
        self._server.start()
        self._health.set("", SERVING)
        self.update_health()
        if self.config.metrics_address is not None:
            self.metrics_address = self.metrics.serve(self.config.metrics_address)
        if self.reloader is not None:
            self.reloader.start(self.config.poll_interval)
        log_event(
            logging.INFO,
            "server_started",
            address=self._address,
            tls=self.config.tls_certificate is not None,
            auth=self.config.auth_token is not None,
            workers=self.config.workers,
            batching=None if self.config.batching is None else dataclasses.asdict(self.config.batching),
            metrics_address=self.metrics_address,
            protocols=[protocol.name for protocol in self.protocols],
            policies={
                name: [v.version for v in self.policies.versions(name) if v.available]
                for name in self.policies.names()
            },
        )
        return self

    def update_health(self) -> None:
        """Report each policy name SERVING while one of its versions is available."""
        for name in self.policies.names():
            self._health.set(name, SERVING if self.policies.is_serving(name) else NOT_SERVING)

    def stop(self, grace: float | None = None) -> bool:
        """Refuse new calls, give in-flight ones `grace` seconds (config default), cancel the rest.

        Returns whether every RPC thread finished; False means one is stuck (in a policy call,
        say) and the process should exit without waiting for it.
        """
        if self._stopped.is_set():
            return True
        self._stopped.set()
        grace = self.config.grace_period if grace is None else grace
        self._health.enter_graceful_shutdown()
        if self.reloader is not None:
            self.reloader.stop()
        stopped = self._server.stop(grace)  # new calls are refused from here on
        log_event(logging.INFO, "server_stopping", address=self._address, grace_seconds=grace)
        stopped.wait(grace + _CANCEL_SECONDS)  # grpc cancels the calls still running after `grace`
        self._streams.stop()
        self.metrics.stop()
        threads_done = threading.Thread(target=self._executor.shutdown, name="gymserve-stop", daemon=True)
        threads_done.start()
        threads_done.join(_CANCEL_SECONDS)
        clean = not threads_done.is_alive()
        log_event(logging.INFO, "server_stopped", address=self._address, clean=clean)
        return clean

    def wait_for_shutdown_signal(self, signals: ServerSignals | None = None) -> bool:
        """Serve until SIGTERM or SIGINT, then stop (returning `stop`'s answer); call from the main thread.

        Starts the server if it has not started, after the handlers are in place, so that a
        signal sent as soon as "server_started" is logged still stops it gracefully. SIGHUP
        rescans the policy directories at once. A second SIGTERM/SIGINT while stopping exits
        the process at once with status 128 + the signal's number. Pass `signals` installed
        before this server was built to cover its start-up too (see `signals`).
        """
        with contextlib.ExitStack() as installed:
            signals = signals or installed.enter_context(ServerSignals())
            signals.running(self.reloader.rescan if self.reloader is not None else lambda: None)
            if self._address is None:
                self.start()
            signals.wait_for_stop()
            return self.stop()

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _bind(self) -> int:
        config = self.config
        try:
            if config.tls_certificate is None:
                port = self._server.add_insecure_port(config.address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(config.tls_private_key.read_bytes(), config.tls_certificate.read_bytes())]
                )
                port = self._server.add_secure_port(config.address, credentials)
        except OSError as error:
            raise ServerConfigError(f"cannot read TLS file {error.filename}: {error.strerror}") from None
        except RuntimeError as error:
            raise ServerConfigError(f"cannot listen on {config.address}: {error}") from None
        if port == 0:
            raise ServerConfigError(f"cannot listen on {config.address}: the address is in use or invalid")
        return port


def _available_protocols() -> list[Protocol]:
    """The registered protocols, less those whose optional packages are missing (each logged once)."""
    protocols, skipped = load_protocols(apis.PROTOCOLS)
    for protocol in skipped:
        log_event(logging.WARNING, "protocol_skipped", protocol=protocol.entry, reason=protocol.reason)
    return protocols


def server_options(config: ServerConfig) -> list[tuple[str, int]]:
    """The grpc channel arguments of a policy server (benchmark floors use them too)."""
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # a second server on the same port must fail to start, not share the port silently
        ("grpc.so_reuseport", 0),
    ]


def configured_reloader(config: ServerConfig) -> PolicyReloader:
    """A reloader that has loaded the exports the config names (the pretrained ones when it names none)."""
    repository = config.repository
    if not config.policies and repository is None:
        repository = pretrained_repository()
        if repository is None:
            raise ServerConfigError(
                "no policies to serve: pass --policy NAME=PATH or --repository DIR "
                "(this installation bundles no pretrained policies)"
            )
    reloader = PolicyReloader(
        config.policies,
        repository,
        config.policy_settings,
        export_loader(config.backend),
        ServedPolicies(),
        allow_space_changes=config.allow_space_changes,
    )
    reloader.first_sync()
    return reloader


def load_configured_policies(config: ServerConfig) -> ServedPolicies:
    """The policies the config names, loaded once (no reloading)."""
    return configured_reloader(config).served
