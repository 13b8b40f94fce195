"""Ship the protocol's .proto files (the repository's `protos/`) inside the package's wheel."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO_ROOT = Path(__file__).parent / "protos"


THIRD_PARTY_ROOT = Path("gymserve/serving/apis")  # where protos of other packages have their modules


class BuildPyWithProtos(build_py):
    """Copies each .proto beside its generated modules (tools/generate_protos.py's PROTOS).

    gymserve's own `protos/gymserve/X/Y.proto` goes to `gymserve/X/Y.proto`; a third party's
    `protos/inference/Y.proto` to `gymserve/serving/apis/inference/Y.proto`, so the wheel adds
    no top-level folder beside `gymserve`.
    """

    def run(self) -> None:
        super().run()
        for proto in sorted(PROTO_ROOT.rglob("*.proto")):
            path = proto.relative_to(PROTO_ROOT)
            if path.parts[0] != "gymserve":
                path = THIRD_PARTY_ROOT / path
            target = Path(self.build_lib) / path
            self.mkpath(str(target.parent))
            self.copy_file(str(proto), str(target))


setup(cmdclass={"build_py": BuildPyWithProtos})
