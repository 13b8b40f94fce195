"""Sizes a request declares are checked before anything is built, and every error stays small.

A tensor declares its shape apart from its values, so a tiny message can declare billions of
elements; a shape or a name can also be a megabyte long. Each such request must be refused
at once with a short INVALID_ARGUMENT (or RESOURCE_EXHAUSTED for a batch over the limit),
without the server's memory growing, and the server must keep serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from serving_support import greedy_by_hand, observations, standard_policies, start_server
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.client.protos import policy_service_pb2_grpc as pb_grpc
from gymserve.serving.client.tensors import to_tensor
from gymserve.serving.server.policy_server import PolicyServer

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
GOOD = observations(3, seed=7)
HUGE_SHAPE = [125_000_000, 4]  # 2 GB of float32
MAX_GROWTH = 16 * 1024 * 1024  # bytes the process's peak memory may rise while a request is refused
SHORT_ERROR = 300  # bytes of a refusal that repeats no client string
ECHOING_ERROR = 600  # bytes of one that repeats a client string, cut
MESSAGE_LIMIT = 4 * 1024 * 1024  # the server's default largest request
MEGABYTE_NAME = "n" * 1_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[PolicyServer]:
    """The standard policies under the default limits: 4096 observations, 4 MiB messages."""
    server = start_server(standard_policies())
    yield server
    server.stop(grace=0)


@pytest.fixture
def channel(server: PolicyServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


@pytest.fixture
def act(channel: grpc.Channel) -> Callable:
    stub = pb_grpc.PolicyServiceStub(channel)
    stub.Act(pb.ActRequest(policy_name="linear", observations=to_tensor(GOOD)), timeout=30)  # warm up
    return stub.Act


@pytest.fixture
def prediction_service(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    stub.Predict(predict_request(tensor_proto(GOOD.shape, GOOD.ravel())), timeout=60)  # loads the API
    return stub


def tensor_proto(
    shape: list[int], values: object, data_type: int = types_pb2.DT_FLOAT
) -> tensor_pb2.TensorProto:
    """A TensorProto declaring `shape` and carrying `values` as its typed value list."""
    tensor = tensor_pb2.TensorProto(dtype=data_type)
    tensor.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape)
    field = "int64_val" if data_type == types_pb2.DT_INT64 else "float_val"
    getattr(tensor, field).extend(np.asarray(values).tolist())
    return tensor


def predict_request(
    observations: tensor_pb2.TensorProto, name: str = "linear", signature: str = "", **inputs: object
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    request.inputs["observations"].CopyFrom(observations)
    for key, tensor in inputs.items():
        request.inputs[key].CopyFrom(tensor)
    return request


def resident_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def refusal(call: Callable, request: object) -> tuple[grpc.RpcError, float, int]:
    """The error `call` answers `request` with, the seconds it took, and how far peak memory rose.

    The server runs in this process; resetting the peak (VmHWM) to the current resident size
    first makes the peak after the call show any allocation made while answering it.
    """
    clear_refs = Path("/proc/self/clear_refs")
    if not clear_refs.exists():
        pytest.skip("peak memory is read from Linux's /proc/self/clear_refs and VmHWM")
    clear_refs.write_text("5")
    before = resident_kib("VmRSS")
    begin = time.perf_counter()
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=30)
    seconds = time.perf_counter() - begin
    return raised.value, seconds, (resident_kib("VmHWM") - before) * 1024


def assert_still_acting(act: Callable) -> None:
    response = act(
        pb.ActRequest(policy_name="linear", policy_version=1, observations=to_tensor(GOOD)), timeout=30
    )
    np.testing.assert_array_equal(np.frombuffer(response.actions.content, np.int64), greedy_by_hand(GOOD))


def test_a_tiny_predict_declaring_2_gb_by_one_float_val_is_refused_at_once(prediction_service, act):
    request = predict_request(tensor_proto(HUGE_SHAPE, [1.0]))
    assert request.ByteSize() < 64
    error, seconds, growth = refusal(prediction_service.Predict, request)
    assert error.code() == INVALID
    assert error.details() == (
        "observations of shape [125000000, 4] takes 2000000000 bytes; "
        "the tensors of one request may take at most 4194304 bytes on this server"
    )
    assert seconds < 1.0 and growth < MAX_GROWTH, (seconds, growth)
    assert_still_acting(act)


def test_a_seed_declaring_a_huge_shape_is_refused_before_it_is_built(prediction_service):
    seed = tensor_proto(HUGE_SHAPE, [1], types_pb2.DT_INT64)
    request = predict_request(
        tensor_proto(GOOD.shape, GOOD.ravel()), signature="stochastic_action", seed=seed
    )
    error, seconds, growth = refusal(prediction_service.Predict, request)
    assert (
        error.code() == INVALID and "seed of shape [125000000, 4] takes 4000000000 bytes" in error.details()
    )
    assert seconds < 1.0 and growth < MAX_GROWTH, (seconds, growth)


def test_one_float_val_broadcast_to_a_batch_over_the_limit_is_refused_before_it_is_built(prediction_service):
    error, seconds, growth = refusal(
        prediction_service.Predict, predict_request(tensor_proto([5000, 4], [1.0]))
    )
    assert error.code() == EXHAUSTED
    assert error.details() == "batch of 5000 observations exceeds the server's limit of 4096"
    assert seconds < 1.0 and growth < MAX_GROWTH, (seconds, growth)


def test_one_float_val_still_fills_a_shape_within_the_limits(prediction_service):
    response = prediction_service.Predict(predict_request(tensor_proto([3, 4], [0.5])), timeout=30)
    action = np.frombuffer(response.outputs["action"].tensor_content, np.int64)
    np.testing.assert_array_equal(action, greedy_by_hand(np.full((3, 4), 0.5, np.float32), version=2))


def wire_observations(shape: list[int], content: bytes) -> pb.ActRequest:
    tensor = pb.Tensor(dtype=pb.DATA_TYPE_FLOAT32, shape=shape, content=content)
    return pb.ActRequest(policy_name="linear", observations=tensor)


def test_an_act_declaring_2_gb_in_16_bytes_is_refused_at_once(act):
    error, seconds, growth = refusal(act, wire_observations(HUGE_SHAPE, b"\0" * 16))
    assert error.code() == INVALID
    assert "observations of shape [125000000, 4] takes 2000000000 bytes" in error.details()
    assert seconds < 1.0 and growth < MAX_GROWTH, (seconds, growth)
    assert_still_acting(act)


def test_an_act_whose_bytes_match_a_batch_over_the_limit_is_refused_at_once(act):
    error, seconds, growth = refusal(
        act, wire_observations([5000, 4], np.zeros((5000, 4), np.float32).tobytes())
    )
    assert error.code() == EXHAUSTED
    assert error.details() == "batch of 5000 observations exceeds the server's limit of 4096"
    assert seconds < 1.0 and growth < MAX_GROWTH, (seconds, growth)


def test_a_stream_step_declaring_2_gb_ends_its_stream_at_once(channel: grpc.Channel):
    request = pb.StreamActRequest(act=wire_observations(HUGE_SHAPE, b"\0" * 16), episode_start=True)
    responses = pb_grpc.PolicyServiceStub(channel).StreamAct(iter([request]), timeout=30)
    with pytest.raises(grpc.RpcError) as raised:
        next(responses)
    assert raised.value.code() == INVALID and "takes 2000000000 bytes" in raised.value.details()


@pytest.mark.parametrize("dimensions", [10_000, 1_000_000])
def test_a_shape_of_many_dimensions_gets_a_short_invalid_argument_on_act(act, dimensions: int):
    request = wire_observations([1] * dimensions, b"\0" * 4)
    assert request.ByteSize() < MESSAGE_LIMIT  # shape is a packed repeated int64: a byte per 1
    error, seconds, _ = refusal(act, request)
    assert error.code() == INVALID
    assert error.details() == f"the shape of observations has {dimensions} dimensions; at most 2 are accepted"
    assert len(error.details().encode()) < SHORT_ERROR and seconds < 1.0
    assert_still_acting(act)


@pytest.mark.parametrize("dimensions", [10_000, 1_000_000])
def test_a_shape_of_many_dimensions_gets_a_short_invalid_argument_on_predict(
    prediction_service, dimensions: int
):
    request = predict_request(tensor_proto([0] * dimensions, []))
    assert request.ByteSize() < MESSAGE_LIMIT  # an empty dimension is 2 bytes
    error, seconds, _ = refusal(prediction_service.Predict, request)
    assert error.code() == INVALID
    assert error.details() == f"the shape of observations has {dimensions} dimensions; at most 2 are accepted"
    assert len(error.details().encode()) < SHORT_ERROR and seconds < 1.0


def test_a_state_of_many_dimensions_or_many_parts_gets_a_short_invalid_argument(act):
    request = pb.ActRequest(policy_name="linear", observations=to_tensor(GOOD))
    request.state.add(dtype=pb.DATA_TYPE_FLOAT32, shape=[1] * 1_000_000, content=b"\0" * 4)
    error = refusal(act, request)[0]
    assert (error.code(), error.details()) == (
        INVALID,
        "the shape of state[0] has 1000000 dimensions; at most 8 are accepted",
    )
    request = pb.ActRequest(policy_name="linear", observations=to_tensor(GOOD))
    for _ in range(100_000):
        request.state.add(dtype=pb.DATA_TYPE_FLOAT32, shape=[0])
    error = refusal(act, request)[0]
    assert (error.code(), error.details()) == (INVALID, "the request has more than 1024 tensors")


def assert_small(error: grpc.RpcError, code: grpc.StatusCode, *parts: str) -> None:
    details = error.details()
    assert error.code() == code, details[:500]
    assert len(details.encode()) < ECHOING_ERROR, details[:500]
    for part in parts:
        assert part in details, details


def test_megabyte_names_and_labels_give_small_errors_on_act(act):
    observations = to_tensor(GOOD)
    error = refusal(act, pb.ActRequest(policy_name=MEGABYTE_NAME, observations=observations))[0]
    assert_small(error, NOT_FOUND, "(1000000 characters, cut to 256); serving: broken, linear, scripted")
    error = refusal(
        act, pb.ActRequest(policy_name="linear", version_label=MEGABYTE_NAME, observations=observations)
    )[0]
    assert_small(error, NOT_FOUND, "policy 'linear' has no label", "(1000000 characters, cut to 256)")


def test_megabyte_names_give_small_errors_on_predict(prediction_service):
    good = tensor_proto(GOOD.shape, GOOD.ravel())
    cases = {
        "model name": (predict_request(good, name=MEGABYTE_NAME), NOT_FOUND, "no policy named 'nnnn"),
        "signature": (predict_request(good, signature=MEGABYTE_NAME), INVALID, "no signature 'nnnn"),
        "input name": (
            predict_request(good, **{MEGABYTE_NAME: good}),
            INVALID,
            "the request has 'nnnn",
        ),
    }
    many_inputs = predict_request(good)
    for index in range(50_000):
        many_inputs.inputs[f"input{index}"].dtype = types_pb2.DT_FLOAT
    cases["50,000 inputs"] = (many_inputs, INVALID, "and 49997 more")
    many_filters = predict_request(good)
    many_filters.output_filter.extend(f"{index}{MEGABYTE_NAME[:4096]}" for index in range(500))
    cases["500 output filters"] = (many_filters, INVALID, "(4097 characters, cut to 64)")
    for case, (request, code, part) in cases.items():
        assert request.ByteSize() < MESSAGE_LIMIT, case
        assert_small(refusal(prediction_service.Predict, request)[0], code, part)


def test_a_megabyte_of_metadata_fields_gives_a_small_error(prediction_service):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[MEGABYTE_NAME, "signature_def"])
    request.model_spec.name = "linear"
    error = refusal(prediction_service.GetModelMetadata, request)[0]
    assert_small(error, INVALID, "(1000000 characters, cut to 64)", "'signature_def'")
