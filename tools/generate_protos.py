"""Regenerate the committed Python modules of the repository's `protos/`, each into its Python package.

    python -m tools.generate_protos [OUTPUT_ROOT]      (from the repository root)

`protos/` is the import root of every .proto, so descriptors (and server reflection) name each
file by its path there, as its authors do (`gymserve/serving/v1/policy_service.proto`, or a
third party's `inference/grpc_service.proto`). `PROTOS` says which Python package each one's
modules go to; protoc's imports between them are rewritten to those packages, so a third
party's `package inference;` can live under gymserve without a top-level `inference` module.
A test regenerates them into a temporary directory and fails when the committed files differ.
The wheel build (setup.py) copies each .proto beside its modules: gymserve's own to their path
under protos/, a third party's under gymserve/serving/apis/ (so `PROTOS` puts their modules there).
(Run protoc in a process without TensorFlow: their bundled protobuf libraries clash.)
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = SOURCE_ROOT / "protos"

# .proto under protos/                           Python package of its generated modules
PROTOS: dict[str, str] = {
    "gymserve/serving/v1/policy_service.proto": "gymserve.serving.v1",
    "inference/grpc_service.proto": "gymserve.serving.apis.inference",
}


def generated_files(proto_file: str, protos: Mapping[str, str] = PROTOS) -> tuple[str, str]:
    """The paths, relative to the output root, of the modules generated from `proto_file`."""
    folder = protos[proto_file].replace(".", "/")
    stem = Path(proto_file).stem
    return f"{folder}/{stem}_pb2.py", f"{folder}/{stem}_pb2_grpc.py"


def generate(
    output_root: Path = SOURCE_ROOT, protos: Mapping[str, str] = PROTOS, proto_root: Path = PROTO_ROOT
) -> list[Path]:
    """Compile every proto of `protos` (paths under `proto_root`) into `output_root`; the files written."""
    from grpc_tools import protoc

    written = []
    with tempfile.TemporaryDirectory() as scratch:
        arguments = [
            "grpc_tools.protoc",
            f"--proto_path={proto_root}",
            f"--python_out={scratch}",
            f"--grpc_python_out={scratch}",
            *protos,
        ]
        if protoc.main(arguments) != 0:
            raise RuntimeError(f"protoc failed on {', '.join(protos)} in {proto_root}")
        for proto_file in protos:
            stem = proto_file.removesuffix(".proto")
            for compiled, target in zip(
                (f"{stem}_pb2.py", f"{stem}_pb2_grpc.py"), generated_files(proto_file, protos), strict=True
            ):
                path = output_root / target
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_rewrite_imports((Path(scratch) / compiled).read_bytes(), protos))
                written.append(path)
    return written


def _rewrite_imports(module: bytes, protos: Mapping[str, str]) -> bytes:
    """`module` importing each proto's generated modules from their package in `protos`.

    protoc writes `from inference import grpc_service_pb2 as ...` (or `import grpc_service_pb2
    as ...` for a file at the import root): the proto's folder taken as a Python package.
    """
    for proto_file, package in protos.items():
        folder, _, name = proto_file.removesuffix(".proto").rpartition("/")
        for suffix in ("_pb2", "_pb2_grpc"):
            source = f"from {folder.replace('/', '.')} import " if folder else "import "
            pattern = rf"^{re.escape(source)}{name}{suffix}\b".encode()
            module = re.sub(pattern, f"from {package} import {name}{suffix}".encode(), module, flags=re.M)
    return module


if __name__ == "__main__":
    output_root = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE_ROOT
    for path in generate(output_root):
        print(path)
