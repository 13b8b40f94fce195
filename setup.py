"""Ship the protocol's .proto files (the repository's `protos/`) inside the package's wheel."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO_ROOT = Path(__file__).parent / "protos"


class BuildPyWithProtos(build_py):
    """Copies `protos/X/Y.proto` to the package path `X/Y.proto`, beside its generated modules."""

    def run(self) -> None:
        super().run()
        for proto in sorted(PROTO_ROOT.rglob("*.proto")):
            target = Path(self.build_lib) / proto.relative_to(PROTO_ROOT)
            self.mkpath(str(target.parent))
            self.copy_file(str(proto), str(target))


setup(cmdclass={"build_py": BuildPyWithProtos})
