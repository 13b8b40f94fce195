"""The Triton model config an export into REPOSITORY/NAME/VERSION writes beside its versions.

The schema check parses config.pbtxt with Triton's own ModelConfig message. tritonclient pins an older
protobuf than ours, so rather than installing it, its wheel is downloaded and the serialized
descriptor of `tritonclient/grpc/model_config_pb2.py` is built into a private descriptor pool: no
generated code of another protobuf version runs.
"""

from __future__ import annotations

import ast
import errno
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from gymserve.policies import ActorPolicy, ExportError, convert_export, export_policy
from gymserve.policies.export import triton_config
from gymserve.policies.export.triton_config import GENERATED_HEADER, MAX_BATCH_SIZE, TRITON_CONFIG_FILE
from gymserve.policies.repository import scan_policy_directory
from gymserve.serving.server.config import ServerConfig

TRITONCLIENT = "tritonclient==2.73.0"
MODEL_CONFIG_MODULE = "tritonclient/grpc/model_config_pb2.py"
TRITON_TYPE_OF_ONNX = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT64: "TYPE_INT64"}


@pytest.fixture(scope="session")
def model_config_class(tmp_path_factory: pytest.TempPathFactory) -> type:
    """Triton's `inference.ModelConfig` message, from the descriptor tritonclient's wheel ships."""
    folder = tmp_path_factory.mktemp("tritonclient")
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", TRITONCLIENT, "--no-deps", "--quiet", "-d", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if download.returncode != 0:
        reason = f"cannot download {TRITONCLIENT} from PyPI: {download.stderr.strip()[-300:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the Triton schema check must run")
        pytest.skip(reason)
    (wheel,) = folder.glob("tritonclient-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read(MODEL_CONFIG_MODULE).decode("utf-8")
    serialized = next(
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "AddSerializedFile"
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(serialized))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


@pytest.fixture(scope="module")
def repository(
    discrete_policy: ActorPolicy, continuous_policy: ActorPolicy, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    repository = tmp_path_factory.mktemp("repository")
    export_policy(discrete_policy, repository / "cartpole" / "3", ("onnx",))
    export_policy(continuous_policy, repository / "minitaur" / "1")
    return repository


def onnx_dims(value: onnx.ValueInfoProto) -> list[int]:
    return [dim.dim_value for dim in value.type.tensor_type.shape.dim]


@pytest.mark.slow  # downloads tritonclient's wheel from PyPI once per session
@pytest.mark.parametrize("name", ["cartpole", "minitaur"])
def test_the_config_parses_as_a_triton_model_config_matching_the_onnx_model(
    repository, model_config_class, name
):
    config = text_format.Parse((repository / name / TRITON_CONFIG_FILE).read_text(), model_config_class())
    (version,) = scan_policy_directory(name, repository / name).versions
    model = onnx.load(str(version.path / config.default_model_filename))
    assert (config.name, config.backend, config.max_batch_size) == (name, "onnxruntime", MAX_BATCH_SIZE)
    assert [tensor.name for tensor in config.input] == [tensor.name for tensor in model.graph.input]
    assert [tensor.name for tensor in config.output] == [tensor.name for tensor in model.graph.output]
    data_types = model_config_class.DESCRIPTOR.file.pool.FindEnumTypeByName("inference.DataType")
    declared_and_actual = [
        *zip(config.input, model.graph.input, strict=True),
        *zip(config.output, model.graph.output, strict=True),
    ]
    for declared, actual in declared_and_actual:
        data_type = data_types.values_by_number[declared.data_type].name
        assert data_type == TRITON_TYPE_OF_ONNX[actual.type.tensor_type.elem_type]
        batch, *dims = onnx_dims(actual)
        assert batch == 0, "the first ONNX dimension is the dynamic batch"
        if dims:
            assert (list(declared.dims), declared.HasField("reshape")) == (dims, False)
        else:  # a tensor of shape [batch] only
            assert (list(declared.dims), list(declared.reshape.shape)) == ([1], [])


def test_the_config_sits_beside_the_versions_and_the_repository_listing_ignores_it(repository):
    assert sorted(path.name for path in (repository / "cartpole").iterdir()) == ["3", TRITON_CONFIG_FILE]
    listing = scan_policy_directory("cartpole", repository / "cartpole")
    assert [(version.version, version.path.name) for version in listing.versions] == [(3, "3")]
    assert listing.ignored == []


def test_the_config_allows_the_servers_default_batch():
    assert ServerConfig().max_request_observations == MAX_BATCH_SIZE


def test_exports_outside_a_repository_layout_or_without_onnx_write_no_config(discrete_policy, tmp_path):
    export_policy(discrete_policy, tmp_path / "plain" / "cartpole", ("onnx",))
    export_policy(discrete_policy, tmp_path / "saved" / "cartpole" / "1", ("savedmodel",))
    export_policy(discrete_policy, tmp_path / "numbered" / "7" / "1", ("onnx",))  # a number is no name
    assert sorted(path.name for path in tmp_path.rglob(TRITON_CONFIG_FILE)) == []


def test_a_config_edited_by_hand_is_kept_and_a_written_one_follows_the_latest_export(
    discrete_policy, continuous_policy, tmp_path
):
    config = tmp_path / "policy" / TRITON_CONFIG_FILE
    export_policy(discrete_policy, tmp_path / "policy" / "1", ("onnx",))
    assert "dims: [ 4 ]" in config.read_text()
    export_policy(continuous_policy, tmp_path / "policy" / "2", ("onnx",))
    assert "dims: [ 28 ]" in config.read_text()
    edited = config.read_text().removeprefix(GENERATED_HEADER + "\n")
    edited += "instance_group [ { kind: KIND_CPU } ]\n"
    config.write_text(edited)
    export_policy(discrete_policy, tmp_path / "policy" / "3", ("onnx",))
    assert config.read_text() == edited


def test_a_config_that_cannot_be_written_fails_the_export_in_one_line(discrete_policy, tmp_path, monkeypatch):
    def full_disk(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(triton_config, "write_text_atomically", full_disk)
    with pytest.raises(ExportError) as raised:
        export_policy(discrete_policy, tmp_path / "cartpole" / "1", ("onnx",))
    policy_directory = tmp_path / "cartpole"
    config = policy_directory / TRITON_CONFIG_FILE
    assert str(raised.value) == f"cannot export to {policy_directory}: No space left on device ({config})"


def test_a_previous_export_converted_into_a_repository_gets_the_config_too(repository, tmp_path):
    convert_export(repository / "cartpole" / "3", tmp_path / "cartpole" / "1", ("onnx",))
    written = (tmp_path / "cartpole" / TRITON_CONFIG_FILE).read_text()
    assert written == (repository / "cartpole" / TRITON_CONFIG_FILE).read_text()
