"""Regenerate the committed Python modules of the policy service from the repository's `protos/`.

    python -m tools.generate_protos [OUTPUT_ROOT]      (from the repository root)

`protos/` is the import root of every .proto, so descriptors (and server reflection) name the
file `gymserve/serving/v1/policy_service.proto`, and protoc writes its modules to the matching
Python package, `gymserve.serving.v1`. A test regenerates them into a temporary directory and
fails when the committed files differ. The wheel build copies the .proto files beside them.
(Run protoc in a process without TensorFlow: their bundled protobuf libraries clash.)
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = SOURCE_ROOT / "protos"
PROTO_FILES = ("gymserve/serving/v1/policy_service.proto",)


def generated_files(proto_file: str) -> tuple[str, str]:
    """The paths, relative to the output root, of the modules generated from `proto_file`."""
    stem = proto_file.removesuffix(".proto")
    return f"{stem}_pb2.py", f"{stem}_pb2_grpc.py"


def generate(output_root: Path = SOURCE_ROOT) -> list[Path]:
    """Compile every proto into `output_root`, returning the files written."""
    from grpc_tools import protoc

    output_root.mkdir(parents=True, exist_ok=True)
    arguments = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        *PROTO_FILES,
    ]
    if protoc.main(arguments) != 0:
        raise RuntimeError(f"protoc failed on {', '.join(PROTO_FILES)} in {PROTO_ROOT}")
    return [output_root / name for proto_file in PROTO_FILES for name in generated_files(proto_file)]


if __name__ == "__main__":
    output_root = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE_ROOT
    for path in generate(output_root):
        print(path)
