"""tritonclient, the Open Inference Protocol's everyday client, against the policy server.

tritonclient[grpc] pins protobuf below 7 and gymserve's stubs need 7, so it runs in a venv of
its own, installed from PyPI; the server runs in this environment. Its high-level gRPC client
sends inputs as raw bytes (`set_data_from_numpy`); typed contents go through its own generated
messages (`tritonclient.grpc.service_pb2`), so both encodings are checked against the
protocol's published definitions rather than against gymserve's copy of them. Its HTTP client
sends and asks for binary tensor data by default, and JSON with binary_data=False: both are
checked too.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import venv
from pathlib import Path

import numpy as np
import pytest
from serving_support import greedy_by_hand, observations, policies_with_a_box, start_server

from gymserve.serving.client import PolicyClient

pytestmark = pytest.mark.slow  # installs tritonclient into a fresh venv: about 30 s with a warm pip cache

INSTALL_SECONDS = 600
MODELS = ("linear", "box")

# Run by the tritonclient venv's Python with the server's address and the observations (JSON).
SCRIPT = textwrap.dedent(
    """
    import json, sys

    import grpc
    import numpy as np
    import tritonclient.grpc as triton
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    address, batch = sys.argv[1], np.asarray(json.loads(sys.argv[2]), np.float32)
    client = triton.InferenceServerClient(address)
    answer = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": {name: client.is_model_ready(name) for name in ("linear", "box", "broken")},
        "metadata": {
            name: {
                "versions": list(metadata.versions),
                "inputs": [[t.name, t.datatype, list(t.shape)] for t in metadata.inputs],
            }
            for name, metadata in ((name, client.get_model_metadata(name)) for name in ("linear", "box"))
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

    answer["raw"] = {model: raw(model) for model in ("linear", "box")}
    answer["typed"] = {model: typed(model) for model in ("linear", "box")}
    seeded = {"mode": "stochastic", "seed": 11}
    answer["stochastic"] = {model: raw(model, parameters=seeded) for model in ("linear", "box")}
    print(json.dumps(answer))
    """
)

# Run like SCRIPT with the server's HTTP address: tritonclient.http's binary defaults, then JSON.
HTTP_SCRIPT = textwrap.dedent(
    """
    import json, sys

    import numpy as np
    import tritonclient.http as triton

    address, batch = sys.argv[1], np.asarray(json.loads(sys.argv[2]), np.float32)
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
        "binary": {model: infer(model, True) for model in ("linear", "box")},
        "json": {model: infer(model, False) for model in ("linear", "box")},
    }
    print(json.dumps(answer))
    """
)


def tritonclient_venv(directory: Path) -> Path:
    """The Python of a fresh venv with tritonclient[grpc,http] and numpy; skips when PyPI is out of reach."""
    venv.create(directory, with_pip=True)
    python = directory / "bin" / "python"
    try:
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "tritonclient[grpc,http]", "numpy"],
            capture_output=True, text=True, timeout=INSTALL_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        install = None
    if install is None or install.returncode != 0:
        reason = "pip timed out" if install is None else install.stderr.strip().splitlines()[-1:]
        if os.environ.get("CI"):
            pytest.fail(f"could not install tritonclient[grpc,http] from PyPI: {reason}")
        pytest.skip(f"tritonclient[grpc,http] could not be installed from PyPI (offline?): {reason}")
    return python


def run_script(python: Path, script: str, address: str, batch: np.ndarray) -> dict:
    """What `script` prints, run by the tritonclient venv's `python` against `address`."""
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    run = subprocess.run(
        [str(python), "-c", script, address, json.dumps(batch.tolist())],
        capture_output=True, text=True, timeout=120, env=environment,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_tritonclient_gets_the_actions_gymserve_clients_get(tmp_path: Path):
    python = tritonclient_venv(tmp_path / "venv")
    batch = observations(100, seed=21)
    server = start_server(policies_with_a_box(), http_address="127.0.0.1:0")
    try:
        answer = run_script(python, SCRIPT, server.address, batch)
        http_answer = run_script(python, HTTP_SCRIPT, server.http_address, batch)
        with PolicyClient(server.address, timeout=30) as client:
            greedy = {model: client.act(batch, model, version=1) for model in MODELS}
            stochastic = {
                model: client.act(batch, model, mode="stochastic", seed=11, version=1) for model in MODELS
            }
    finally:
        server.stop(grace=0)
    assert (answer["live"], answer["ready"]) == (True, True)
    assert answer["model_ready"] == {"linear": True, "box": True, "broken": False}
    assert answer["metadata"] == {
        "linear": {"versions": ["1", "2"], "inputs": [["observations", "FP32", [-1, 4]]]},
        "box": {"versions": ["1"], "inputs": [["observations", "FP32", [-1, 4]]]},
    }
    assert greedy["linear"].tolist() == greedy_by_hand(batch, 1).tolist()
    for model in MODELS:
        expected = greedy[model]
        assert np.array_equal(np.asarray(answer["raw"][model], expected.dtype), expected)  # 100 of 100
        typed = answer["typed"][model]
        assert (typed["datatype"], typed["raw"]) == ("INT64" if model == "linear" else "FP32", 0)
        assert np.array_equal(np.asarray(typed["values"], expected.dtype).reshape(expected.shape), expected)
        assert np.array_equal(np.asarray(answer["stochastic"][model], expected.dtype), stochastic[model])
        for encoding in ("binary", "json"):  # tritonclient.http, 100 of 100
            assert np.array_equal(np.asarray(http_answer[encoding][model], expected.dtype), expected)
    assert http_answer["ready"] is True
