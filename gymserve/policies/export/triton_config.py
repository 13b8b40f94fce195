"""The `config.pbtxt` that lets Triton Inference Server (and KServe through it) serve an export's ONNX model.

An export written into a repository layout, REPOSITORY/NAME/VERSION, gets REPOSITORY/NAME/config.pbtxt
beside its version folders, so the repository a training run or `gymserve export` fills is also a
Triton model repository:

    repository/cartpole/config.pbtxt      # backend onnxruntime, default_model_filename policy.onnx
    repository/cartpole/1/policy.onnx ...

The config is read off the ONNX file itself (names, element types, dimensions; the dynamic first
dimension is the batch, left out since `max_batch_size` > 0), so it always matches the model it
serves. A greedy action of shape `[batch]` is declared `dims: [ 1 ]` with an empty `reshape`, the
way Triton spells a tensor with no dimensions besides the batch. Triton keeps one config per name:
each export rewrites it, unless the file does not start with `GENERATED_HEADER` (a config written
or edited by hand), which is left alone. `gymserve serve` reads only version folders and so
ignores the file.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from gymserve.common.files import write_text_atomically
from gymserve.policies.metadata import ONNX_FILE
from gymserve.policies.repository import versioned_policy_name

TRITON_CONFIG_FILE = "config.pbtxt"
BACKEND = "onnxruntime"
MAX_BATCH_SIZE = 4096  # the policy server's default limit of observations in one request
GENERATED_HEADER = "# Written by gymserve export; delete this line to keep your edits on the next export."

# ONNX element type -> Triton data type, for the types a policy's inputs and outputs take
_DATA_TYPES = {
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.BOOL: "TYPE_BOOL",
}


def triton_model_config(name: str, onnx_path: Path) -> str:
    """The text of a Triton model config serving the ONNX model at `onnx_path` as `name`."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    lines = [
        GENERATED_HEADER,
        f'name: "{name}"',
        f'backend: "{BACKEND}"',
        f"max_batch_size: {MAX_BATCH_SIZE}",
        f'default_model_filename: "{onnx_path.name}"',
    ]
    for section, tensors in (("input", graph.input), ("output", graph.output)):
        entries = [_tensor_entry(tensor, onnx_path) for tensor in tensors]
        lines += [f"{section} [", ",\n".join(entries), "]"]
    return "\n".join(lines) + "\n"


def write_triton_config(export_dir: Path) -> Path | None:
    """Write NAME/config.pbtxt for an export at REPOSITORY/NAME/VERSION holding an ONNX model; return
    its path, or None when the export is not in that layout, has no ONNX model, or the existing
    config is not one this function wrote."""
    name = versioned_policy_name(export_dir)
    onnx_path = export_dir / ONNX_FILE
    if name is None or not onnx_path.is_file():
        return None
    path = export_dir.parent / TRITON_CONFIG_FILE
    if path.exists() and not path.read_text(encoding="utf-8").startswith(GENERATED_HEADER):
        return None
    write_text_atomically(path, triton_model_config(name, onnx_path))
    return path


def _tensor_entry(tensor: onnx.ValueInfoProto, onnx_path: Path) -> str:
    tensor_type = tensor.type.tensor_type
    if tensor_type.elem_type not in _DATA_TYPES:
        element = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
        raise ValueError(
            f"{onnx_path}: {tensor.name} has element type {element}, not one a Triton config maps"
        )
    batch, *dims = tensor_type.shape.dim
    if batch.HasField("dim_value"):
        raise ValueError(f"{onnx_path}: {tensor.name} has a fixed first dimension; expected a dynamic batch")
    sizes = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in dims]
    fields = [f'name: "{tensor.name}"', f"data_type: {_DATA_TYPES[tensor_type.elem_type]}"]
    if sizes:
        fields.append(f"dims: [ {', '.join(map(str, sizes))} ]")
    else:
        fields += ["dims: [ 1 ]", "reshape: { shape: [ ] }"]
    return "  {\n" + "".join(f"    {field}\n" for field in fields) + "  }"
