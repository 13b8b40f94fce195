"""tritonclient, the Open Inference Protocol's everyday client, against the policy server, and
installed in one environment with gymserve.

tritonclient[grpc] pins protobuf below 7; gymserve's stubs are generated to load on protobuf 6 and
7, so `pip install <clone>[serve] tritonclient[grpc,http]` resolves to protobuf 6 and both run in
that venv, installed from PyPI: its gymserve client and tritonclient ask this environment's server,
and its own `gymserve serve` answers them too. tritonclient's high-level gRPC client sends inputs as
raw bytes (`set_data_from_numpy`); typed contents go through its own generated messages
(`tritonclient.grpc.service_pb2`), so both encodings are checked against the protocol's published
definitions rather than against gymserve's copy of them. Its HTTP client sends and asks for binary
tensor data by default, and JSON with binary_data=False: both are checked too.
"""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from serving_support import (
    VENV_ENVIRONMENT,
    greedy_by_hand,
    observations,
    policies_with_a_box,
    pypi_venv,
    read_events_until,
    start_server,
)

import gymserve.policies
from gymserve.pretrained import pretrained_policy_for_env
from gymserve.serving.client import PolicyClient
from tools.generate_protos import SOURCE_ROOT

pytestmark = pytest.mark.slow  # installs gymserve[serve] and tritonclient into a fresh venv: about 40 s

MODELS = ("linear", "box")

# Run by the shared venv's Python with the server's address, the observations, the models to ask
# for actions and those to ask for readiness (JSON).
SCRIPT = textwrap.dedent(
    """
    import json, sys

    import google.protobuf
    import grpc
    import numpy as np
    import tritonclient.grpc as triton
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    from gymserve.serving import PolicyClient

    address, batch = sys.argv[1], np.asarray(json.loads(sys.argv[2]), np.float32)
    models, asked_ready = json.loads(sys.argv[3]), json.loads(sys.argv[4])
    client = triton.InferenceServerClient(address)
    with PolicyClient(address) as ours:
        gymserve_greedy = {model: ours.act(batch, model, version=1).tolist() for model in models}
    answer = {
        "protobuf": google.protobuf.__version__,
        "gymserve_greedy": gymserve_greedy,
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": {name: client.is_model_ready(name) for name in asked_ready},
        "metadata": {
            name: {
                "versions": list(metadata.versions),
                "inputs": [[t.name, t.datatype, list(t.shape)] for t in metadata.inputs],
            }
            for name, metadata in ((name, client.get_model_metadata(name)) for name in models)
        },
    }

    def raw(model, **options):
        observations = triton.InferInput("observations", list(batch.shape), "FP32")
        observations.set_data_from_numpy(batch)
        result = client.infer(model, [observations], model_version="1", **options)
        return result.as_numpy("action").tolist()

    def typed(model):
        request = service_pb2.ModelInferRequest(model_name=model, model_version="1")
        tensor = request.inputs.add(name="observations", datatype="FP32", shape=batch.shape)
        tensor.contents.fp32_contents.extend(batch.ravel().tolist())
        with grpc.insecure_channel(address) as channel:
            response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        (action,) = response.outputs
        contents = action.contents
        values = contents.int64_contents if action.datatype == "INT64" else contents.fp32_contents
        raw_count = len(response.raw_output_contents)
        return {"datatype": action.datatype, "raw": raw_count, "values": list(values)}

    answer["raw"] = {model: raw(model) for model in models}
    answer["typed"] = {model: typed(model) for model in models}
    seeded = {"mode": "stochastic", "seed": 11}
    answer["stochastic"] = {model: raw(model, parameters=seeded) for model in models}
    print(json.dumps(answer))
    """
)

# Run like SCRIPT (without its last argument) with the server's HTTP address: tritonclient.http's
# binary defaults, then JSON.
HTTP_SCRIPT = textwrap.dedent(
    """
    import json, sys

    import numpy as np
    import tritonclient.http as triton

    address, batch = sys.argv[1], np.asarray(json.loads(sys.argv[2]), np.float32)
    models = json.loads(sys.argv[3])
    client = triton.InferenceServerClient(address)

    def infer(model, binary):
        observations = triton.InferInput("observations", list(batch.shape), "FP32")
        if binary:
            observations.set_data_from_numpy(batch)  # binary_data=True, and outputs binary by default
            result = client.infer(model, [observations], model_version="1")
        else:
            observations.set_data_from_numpy(batch, binary_data=False)
            outputs = [triton.InferRequestedOutput("action", binary_data=False)]
            result = client.infer(model, [observations], model_version="1", outputs=outputs)
        return result.as_numpy("action").tolist()

    answer = {
        "ready": client.is_server_ready(),
        "binary": {model: infer(model, True) for model in models},
        "json": {model: infer(model, False) for model in models},
    }
    print(json.dumps(answer))
    """
)


@pytest.fixture(scope="module")
def shared_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One venv holding gymserve's server and client and tritonclient: its Python."""
    directory = tmp_path_factory.mktemp("gymserve_and_tritonclient") / "venv"
    return pypi_venv(directory, f"{SOURCE_ROOT}[serve]", "tritonclient[grpc,http]")


def run_script(python: Path, script: str, address: str, batch: np.ndarray, *names: list[str]) -> dict:
    """What `script` prints, run by the shared venv's `python` against `address` for the model `names`."""
    run = subprocess.run(
        [str(python), "-c", script, address, json.dumps(batch.tolist()), *map(json.dumps, names)],
        capture_output=True, text=True, timeout=120, env=VENV_ENVIRONMENT, cwd=python.parent,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_tritonclient_gets_the_actions_gymserve_clients_get(shared_python: Path):
    python = shared_python  # gymserve's client and tritonclient, in one process on protobuf 6
    batch = observations(100, seed=21)
    server = start_server(policies_with_a_box(), http_address="127.0.0.1:0")
    try:
        answer = run_script(python, SCRIPT, server.address, batch, list(MODELS), [*MODELS, "broken"])
        http_answer = run_script(python, HTTP_SCRIPT, server.http_address, batch, list(MODELS))
        with PolicyClient(server.address, timeout=30) as client:
            greedy = {model: client.act(batch, model, version=1) for model in MODELS}
            stochastic = {
                model: client.act(batch, model, mode="stochastic", seed=11, version=1) for model in MODELS
            }
    finally:
        server.stop(grace=0)
    assert answer["protobuf"].startswith("6."), "tritonclient holds protobuf below 7"
    assert (answer["live"], answer["ready"]) == (True, True)
    assert answer["model_ready"] == {"linear": True, "box": True, "broken": False}
    assert answer["metadata"] == {
        "linear": {"versions": ["1", "2"], "inputs": [["observations", "FP32", [-1, 4]]]},
        "box": {"versions": ["1"], "inputs": [["observations", "FP32", [-1, 4]]]},
    }
    assert greedy["linear"].tolist() == greedy_by_hand(batch, 1).tolist()
    for model in MODELS:
        expected = greedy[model]
        assert answer["gymserve_greedy"][model] == expected.tolist()  # the client beside tritonclient
        assert np.array_equal(np.asarray(answer["raw"][model], expected.dtype), expected)  # 100 of 100
        typed = answer["typed"][model]
        assert (typed["datatype"], typed["raw"]) == ("INT64" if model == "linear" else "FP32", 0)
        assert np.array_equal(np.asarray(typed["values"], expected.dtype).reshape(expected.shape), expected)
        assert np.array_equal(np.asarray(answer["stochastic"][model], expected.dtype), stochastic[model])
        for encoding in ("binary", "json"):  # tritonclient.http, 100 of 100
            assert np.array_equal(np.asarray(http_answer[encoding][model], expected.dtype), expected)
    assert http_answer["ready"] is True


def test_the_shared_venv_serves_on_protobuf_6_to_both_clients(shared_python: Path):
    """The server itself runs beside tritonclient: health, reflection and every stub load on protobuf 6."""
    server = subprocess.Popen(
        [str(shared_python.parent / "gymserve"), "serve", "--address", "127.0.0.1:0",
         "--http-address", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True, cwd=shared_python.parent, env=VENV_ENVIRONMENT,
    )  # fmt: skip
    try:
        started = read_events_until(server.stderr, "server_started")[-1]
        batch = observations(100, seed=22)
        answer = run_script(shared_python, SCRIPT, started["address"], batch, ["cartpole"], ["cartpole"])
        http_answer = run_script(shared_python, HTTP_SCRIPT, started["http_address"], batch, ["cartpole"])
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert set(started["protocols"]) >= {"policy_service", "health", "open_inference"}
    expected = (
        gymserve.policies.load(pretrained_policy_for_env("gymserve/CartPole-v1").path).action(batch).action
    )
    expected = expected.tolist()
    assert answer["protobuf"].startswith("6.") and answer["model_ready"] == {"cartpole": True}
    assert answer["gymserve_greedy"]["cartpole"] == expected
    assert answer["raw"]["cartpole"] == expected and http_answer["json"]["cartpole"] == expected
