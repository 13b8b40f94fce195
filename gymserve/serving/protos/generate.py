"""Regenerate the committed Python modules of the policy service protos.

    python -m gymserve.serving.protos.generate [OUTPUT_ROOT]

Protos are compiled from the directory that holds the `gymserve` package, so the generated
modules sit beside their .proto file and import each other by their real package path. A test
regenerates them into a temporary directory and fails when the committed files differ.
(Run protoc in a process without TensorFlow: their bundled protobuf libraries clash.)
"""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[3]
PROTO_FILES = ("gymserve/serving/protos/gymserve/serving/v1/policy_service.proto",)


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
        f"--proto_path={SOURCE_ROOT}",
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        *PROTO_FILES,
    ]
    if protoc.main(arguments) != 0:
        raise RuntimeError(f"protoc failed on {', '.join(PROTO_FILES)}")
    return [output_root / name for proto_file in PROTO_FILES for name in generated_files(proto_file)]


if __name__ == "__main__":
    output_root = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE_ROOT
    for path in generate(output_root):
        print(path)
