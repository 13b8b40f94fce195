"""A wheel built from the source distribution, as pip builds one, ships the protocol."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tools.generate_protos import PROTO_ROOT, PROTOS, SOURCE_ROOT, generated_files


def test_a_wheel_built_from_the_sdist_ships_each_proto_beside_its_generated_modules(tmp_path: Path):
    build_sdist = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    sdist = subprocess.run(
        [sys.executable, "-c", build_sdist, str(tmp_path)],
        cwd=SOURCE_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()[-1]  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(tmp_path), str(tmp_path / sdist)],
        check=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("gymserve-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for proto_file in PROTOS:
            assert archive.read(proto_file) == (PROTO_ROOT / proto_file).read_bytes()
            for name in generated_files(proto_file):
                assert archive.read(name) == (SOURCE_ROOT / name).read_bytes()
