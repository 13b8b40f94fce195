"""The policy server: PolicyService plus standard gRPC health and reflection, on one port.

    config = load_server_config(flags={"policies": {"cartpole": "exports/cartpole"}})
    with PolicyServer(config) as server:      # loads the exports, binds, starts
        server.wait_for_shutdown_signal()     # SIGTERM / SIGINT: finish in-flight calls, stop

Health reports the overall service "" and each policy name: a name is SERVING while one of
its versions loaded, NOT_SERVING when none did (the other policies keep serving). Health
checks never need the bearer token; every other call does when a token is configured.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gymserve.serving.auth import BearerTokenInterceptor
from gymserve.serving.config import ServerConfig, ServerConfigError
from gymserve.serving.logs import log_event
from gymserve.serving.protos import SERVICE_NAME, policy_service_pb2_grpc
from gymserve.serving.repository import (
    export_loader,
    load_policies,
    policy_directories,
    pretrained_repository,
)
from gymserve.serving.served_policies import ServedPolicies
from gymserve.serving.service import PolicyService

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class PolicyServer:
    """A gRPC server answering for `policies`, or for the exports `config` names when None."""

    def __init__(self, config: ServerConfig, policies: ServedPolicies | None = None):
        self.config = config
        self.policies = load_configured_policies(config) if policies is None else policies
        self._executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="gymserve-rpc")
        self._server = grpc.server(
            self._executor,
            interceptors=[BearerTokenInterceptor(config.auth_token.get_secret_value())]
            if config.auth_token
            else [],
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                # a second server on the same port must fail to start, not share the port silently
                ("grpc.so_reuseport", 0),
            ],
        )
        policy_service_pb2_grpc.add_PolicyServiceServicer_to_server(
            PolicyService(self.policies, config.max_batch_size, config.max_streams), self._server
        )
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        self._address: str | None = None
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        """HOST:PORT the server listens on (the real port when the config asked for port 0)."""
        if self._address is None:
            raise RuntimeError("the server is not started")
        return self._address

    def start(self) -> PolicyServer:
        host, _, _ = self.config.address.rpartition(":")
        port = self._bind()
        self._address = f"{host}:{port}"
        self._server.start()
        self._health.set("", SERVING)
        for name in self.policies.names():
            self._health.set(name, SERVING if self.policies.is_serving(name) else NOT_SERVING)
        log_event(
            logging.INFO,
            "server_started",
            address=self._address,
            tls=self.config.tls_certificate is not None,
            auth=self.config.auth_token is not None,
            workers=self.config.workers,
            policies={
                name: [v.version for v in self.policies.versions(name) if v.available]
                for name in self.policies.names()
            },
        )
        return self

    def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, give in-flight ones `grace` seconds (config default) to finish, then stop."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.config.shutdown_grace_seconds if grace is None else grace
        self._health.enter_graceful_shutdown()
        stopped = self._server.stop(grace)  # new calls are refused from here on
        log_event(logging.INFO, "server_stopping", address=self._address, grace_seconds=grace)
        stopped.wait()
        self._executor.shutdown(wait=True)
        log_event(logging.INFO, "server_stopped", address=self._address)

    def wait_for_shutdown_signal(self) -> None:
        """Block until SIGTERM or SIGINT, then stop gracefully; call from the main thread."""
        received = threading.Event()

        def on_signal(signal_number: int, frame: FrameType | None) -> None:
            log_event(logging.INFO, "signal_received", signal=signal.Signals(signal_number).name)
            received.set()

        previous = {number: signal.signal(number, on_signal) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not received.wait(0.5):
                pass
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        self.stop()

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


def load_configured_policies(config: ServerConfig) -> ServedPolicies:
    """Load the exports the config names, or the bundled pretrained ones when it names none."""
    repository = config.repository
    if not config.policies and repository is None:
        repository = pretrained_repository()
        if repository is None:
            raise ServerConfigError(
                "no policies to serve: pass --policy NAME=PATH or --repository DIR "
                "(this installation bundles no pretrained policies)"
            )
    try:
        return load_policies(policy_directories(config.policies, repository), export_loader(config.backend))
    except (OSError, ValueError) as error:  # unreadable directories, a name or version given twice
        raise ServerConfigError(str(error)) from None
