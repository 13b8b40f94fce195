"""The Python client of the policy server. It needs only grpcio, protobuf and numpy.

    with PolicyClient("127.0.0.1:8500") as client:
        action = client.act(observation, policy="cartpole")
        with client.stream("cartpole") as session:               # a control loop
            action = session.step(observation, episode_start=True)
            action = session.step(next_observation)

Observations go out as float32 (uint8 arrays, image frames, as uint8); actions come back as
int64 (discrete) or the box's dtype, as read-only numpy arrays, batched exactly like the
observations. A call the server (or the network) fails raises `PolicyServiceError`, which
carries the gRPC status code; a mistake the client can see by itself (an unknown mode, a
negative seed) raises ValueError before sending.
"""

from __future__ import annotations

import json
import os
import queue
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import numpy as np

from gymserve.serving.client.action_modes import mode_number
from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.client.protos import policy_service_pb2_grpc as pb_grpc
from gymserve.serving.client.spaces import WireSpace
from gymserve.serving.client.tensors import fill_tensor, from_tensor

DEFAULT_TIMEOUT = 10.0  # seconds a unary call may take before it fails with DEADLINE_EXCEEDED
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class PolicyServiceError(Exception):
    """A call the server (or the connection) failed; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> PolicyServiceError:
        return cls(error.code(), error.details() or "")


@dataclass(frozen=True)
class ActResult:
    """The actions, the policy version that chose them, when asked for, its distribution, and a
    recurrent policy's next state (to send with the next observations of the same episodes)."""

    actions: np.ndarray
    policy_name: str
    policy_version: int
    distribution: dict[str, np.ndarray] = field(default_factory=dict)
    state: tuple[np.ndarray, ...] = ()

    @classmethod
    def from_proto(cls, response: pb.ActResponse) -> ActResult:
        return cls(
            _actions(response),
            response.policy_name,
            response.policy_version,
            {name: from_tensor(tensor, name) for name, tensor in response.distribution.items()},
            tuple(from_tensor(part, f"state[{index}]") for index, part in enumerate(response.state)),
        )


@dataclass(frozen=True)
class PolicyVersionInfo:
    """One version of a served policy: available, or the error that kept it from loading."""

    version: int
    available: bool
    error: str = ""
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicySummary:
    """A policy name the server knows and the state of each of its versions."""

    name: str
    versions: tuple[PolicyVersionInfo, ...]


@dataclass(frozen=True)
class PolicyInfo:
    """A served policy version: its spaces, its export metadata and the name's other versions."""

    name: str
    version: int
    observation_space: WireSpace
    action_space: WireSpace
    metadata: dict[str, Any]
    versions: tuple[PolicyVersionInfo, ...]


class PolicyClient:
    """A connection to a policy server; thread-safe, so one client can serve many threads.

    `token` is sent as `authorization: Bearer <token>`. TLS is used when `tls` is true or
    `tls_root_certificates` (PEM bytes, or a file) names the certificates to trust.
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls_root_certificates: bytes | str | Path | None = None,
        tls: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if tls or tls_root_certificates is not None:
            roots = tls_root_certificates
            if isinstance(roots, str | Path):
                roots = Path(roots).read_bytes()
            self._channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(roots), options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._stub = pb_grpc.PolicyServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.address = address
        self.timeout = timeout

    @classmethod
    def from_environment(
        cls, address: str, environ: Mapping[str, str] | None = None, **options: Any
    ) -> PolicyClient:
        """A client configured as the `gymserve` commands are: the bearer token from
        GYMSERVE_AUTH_TOKEN, and TLS trusting the PEM file GYMSERVE_TLS_CA when it is set.

        `environ` defaults to `os.environ`; `options` are the other `PolicyClient` arguments.
        """
        environ = os.environ if environ is None else environ
        ca_file = environ.get("GYMSERVE_TLS_CA") or None
        if ca_file is not None and not Path(ca_file).is_file():
            raise ValueError(f"GYMSERVE_TLS_CA names {ca_file}, which is not a file of PEM certificates")
        token = environ.get("GYMSERVE_AUTH_TOKEN") or None
        return cls(address, token=token, tls_root_certificates=ca_file, **options)

    def act(
        self,
        observations: Any,
        policy: str,
        *,
        mode: str = "greedy",
        epsilon: float | None = None,
        seed: int | None = None,
        version: int | None = None,
        label: str = "",
    ) -> np.ndarray:
        """The action for one observation, or the actions for a batch (N, *observation shape).

        `version` or `label` (a name the server maps to a version) picks the version; neither
        means the latest one the server has loaded.
        """
        request = act_request(observations, policy, version, mode, epsilon, seed, False, label=label)
        return _actions(self._call(self._stub.Act, request))

    def act_with_details(
        self,
        observations: Any,
        policy: str,
        *,
        mode: str = "greedy",
        epsilon: float | None = None,
        seed: int | None = None,
        version: int | None = None,
        return_distribution: bool = False,
        label: str = "",
        state: tuple[Any, ...] = (),
    ) -> ActResult:
        """Like `act`, plus the version that answered and, optionally, the distribution parameters.

        A recurrent policy acts from `state` (the previous result's `state`; () starts episodes).
        """
        request = act_request(
            observations, policy, version, mode, epsilon, seed, return_distribution, label=label
        )
        for part in state:
            fill_tensor(request.state.add(), np.asarray(part, np.float32))
        return ActResult.from_proto(self._call(self._stub.Act, request))

    def stream(
        self, policy: str, *, version: int | None = None, mode: str = "greedy", epsilon: float | None = None
    ) -> StreamSession:
        """Open a StreamAct session: one round trip per step, policy state kept by the server."""
        return StreamSession(self._stub, self._metadata, policy, version, mode, epsilon)

    def list_policies(self) -> list[PolicySummary]:
        response = self._call(self._stub.ListPolicies, pb.ListPoliciesRequest())
        return [PolicySummary(summary.name, _versions(summary.versions)) for summary in response.policies]

    def ignored_entries(self) -> list[tuple[str, str]]:
        """The repository entries the server skips (NAME/ENTRY, reason), such as misnamed version folders."""
        response = self._call(self._stub.ListPolicies, pb.ListPoliciesRequest())
        return [(entry.entry, entry.reason) for entry in response.ignored]

    def get_policy(self, name: str, version: int | None = None, label: str = "") -> PolicyInfo:
        request = pb.GetPolicyRequest(policy_name=name, policy_version=version, version_label=label)
        response = self._call(self._stub.GetPolicy, request)
        return PolicyInfo(
            response.policy_name,
            response.policy_version,
            WireSpace.from_proto(response.observation_space),
            WireSpace.from_proto(response.action_space),
            json.loads(response.metadata_json or "{}"),
            _versions(response.versions),
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: grpc.UnaryUnaryMultiCallable, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise PolicyServiceError.from_rpc_error(error) from None


class StreamSession:
    """One StreamAct call: `step` sends an observation and waits for its action; `send` and
    `receive` do the two halves apart, for a loop that cannot wait (see control_loop.py).

    The server keeps the policy state of the session; `episode_start=True` restarts it (the
    first step of a session always starts from the initial state) and `episode_end=True`
    drops it after answering. A failed step closes the session; open a new one to go on.
    """

    _END = object()

    def __init__(
        self,
        stub: pb_grpc.PolicyServiceStub,
        metadata: tuple[tuple[str, str], ...] | None,
        policy: str,
        version: int | None,
        mode: str,
        epsilon: float | None,
    ):
        mode_number(mode)  # refuse a bad mode now, not at the first step
        self._settings = (policy, version, mode, epsilon)
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._responses = stub.StreamAct(iter(self._requests.get, self._END), metadata=metadata)
        self.closed = False
        self._finished_sending = False

    def step(
        self,
        observations: Any,
        *,
        episode_start: bool = False,
        episode_end: bool = False,
        seed: int | None = None,
    ) -> np.ndarray:
        """The action(s) for `observations`, in this session's mode."""
        return _actions(self._exchange(observations, episode_start, episode_end, seed, False))

    def step_with_details(
        self,
        observations: Any,
        *,
        episode_start: bool = False,
        episode_end: bool = False,
        seed: int | None = None,
        return_distribution: bool = False,
    ) -> ActResult:
        """Like `step`, plus the version that answered and, optionally, the distribution parameters."""
        return ActResult.from_proto(
            self._exchange(observations, episode_start, episode_end, seed, return_distribution)
        )

    def send(
        self,
        observations: Any,
        *,
        episode_start: bool = False,
        episode_end: bool = False,
        seed: int | None = None,
    ) -> None:
        """Queue `observations` without waiting; `receive` returns the answers in the order sent."""
        self._send(observations, episode_start, episode_end, seed, False)

    def receive(self) -> ActResult:
        """The answer to the oldest observation `send` queued that has not been answered; waits for it."""
        return ActResult.from_proto(self._next_response())

    def finish_sending(self) -> None:
        """Send no more observations; answers already on their way still come through `receive`."""
        if not self._finished_sending:
            self._finished_sending = True
            self._requests.put(self._END)

    def close(self) -> None:
        """End the call and wait for the server to finish it."""
        if self.closed:
            return
        self.finish_sending()
        self.closed = True
        try:
            for _ in self._responses:
                pass
        except grpc.RpcError:
            pass  # the call already failed; there is nothing left to finish

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _exchange(
        self,
        observations: Any,
        episode_start: bool,
        episode_end: bool,
        seed: int | None,
        return_distribution: bool,
    ) -> pb.ActResponse:
        self._send(observations, episode_start, episode_end, seed, return_distribution)
        return self._next_response()

    def _send(
        self,
        observations: Any,
        episode_start: bool,
        episode_end: bool,
        seed: int | None,
        return_distribution: bool,
    ) -> None:
        if self.closed or self._finished_sending:
            raise RuntimeError("the stream session is closed; open a new one with PolicyClient.stream()")
        message = pb.StreamActRequest(episode_start=episode_start, episode_end=episode_end)
        act_request(observations, *self._settings, seed, return_distribution, message.act)
        self._requests.put(message)

    def _next_response(self) -> pb.ActResponse:
        try:
            return next(self._responses).act
        except grpc.RpcError as error:
            self.closed = True
            raise PolicyServiceError.from_rpc_error(error) from None
        except StopIteration:
            self.closed = True
            raise PolicyServiceError(grpc.StatusCode.UNAVAILABLE, "the server ended the stream") from None


def act_request(
    observations: Any,
    policy: str,
    version: int | None,
    mode: str,
    epsilon: float | None,
    seed: int | None,
    return_distribution: bool,
    request: pb.ActRequest | None = None,
    label: str = "",
) -> pb.ActRequest:
    """Fill `request` (or a new ActRequest) after checking what can be checked without the server."""
    request = pb.ActRequest() if request is None else request
    try:
        array = np.asarray(observations)
        # uint8 frames keep their byte per pixel on the wire; everything else goes as float32
        array = array if array.dtype == np.uint8 else array.astype(np.float32, copy=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"observations must be numbers convertible to float32 ({error})") from None
    request.policy_name = policy
    request.version_label = label
    request.mode = mode_number(mode)
    if version is not None:
        request.policy_version = version
    if epsilon is not None:
        request.epsilon = epsilon
    if seed is not None:
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
        request.seed = seed
    if return_distribution:
        request.return_distribution = True
    fill_tensor(request.observations, array)
    return request


def _actions(response: pb.ActResponse) -> np.ndarray:
    """The response's actions; one action comes back as a numpy scalar, as from a local policy."""
    actions = from_tensor(response.actions, "actions")
    return actions[()] if actions.ndim == 0 else actions


def _versions(versions: Any) -> tuple[PolicyVersionInfo, ...]:
    return tuple(
        PolicyVersionInfo(v.version, v.state == pb.VERSION_STATE_AVAILABLE, v.error, tuple(v.labels))
        for v in versions
    )
