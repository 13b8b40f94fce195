"""A wheel built from the source distribution, as pip builds one, ships the protocol, the type
marker, the license and the HTTP port's page; pyproject's extras install every optional module
extras.py names."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gymserve.common.extras import EXTRA_OF_MODULE
from tools.generate_protos import PROTO_ROOT, PROTOS, SOURCE_ROOT, generated_files

PAGE_FILES = "gymserve/serving/apis/browser_page/static"  # the HTTP port's page


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
        assert archive.read("gymserve/py.typed") == b""
        top_level = {name.split("/")[0].split("-")[0] for name in archive.namelist()}
        assert top_level == {"gymserve"}  # the package and its dist-info: a third party's proto is inside
        (license_file,) = (
            name for name in archive.namelist() if name.endswith(".dist-info/licenses/LICENSE")
        )
        assert archive.read(license_file) == (SOURCE_ROOT / "LICENSE").read_bytes()
        for proto_file in PROTOS:
            modules = generated_files(proto_file)
            beside_modules = f"{Path(modules[0]).parent}/{Path(proto_file).name}"
            assert archive.read(beside_modules) == (PROTO_ROOT / proto_file).read_bytes()
            for name in modules:
                assert archive.read(name) == (SOURCE_ROOT / name).read_bytes()
        page_files = sorted((SOURCE_ROOT / PAGE_FILES).iterdir())
        assert {path.suffix for path in page_files} == {".html", ".js", ".css"}
        for path in page_files:
            assert archive.read(f"{PAGE_FILES}/{path.name}") == path.read_bytes()


def test_each_optional_module_maps_to_an_extra_that_installs_its_distribution():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((SOURCE_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    distributions_of_module = importlib.metadata.packages_distributions()
    for module, extra in EXTRA_OF_MODULE.items():
        (distribution,) = {canonical(name) for name in distributions_of_module[module]}
        installed = requirements_of_extra(extras, extra)
        # listed by the extra itself, or required by a distribution it lists (keras by tensorflow)
        brought_in = installed | {canonical(r) for name in installed for r in distribution_requirements(name)}
        assert distribution in brought_in, f"{module} ({distribution}) is not installed by gymserve[{extra}]"
    core = {canonical(requirement) for requirement in tomllib.loads(
        (SOURCE_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}  # fmt: skip
    assert core == {"numpy", "gymnasium", "grpcio", "protobuf", "pydantic"}


def test_the_client_path_imports_no_optional_module():
    def optional_modules_loaded_by(code: str) -> set[str]:
        script = f"import sys\n{code}\nprint(' '.join({{name.split('.')[0] for name in sys.modules}}))"
        loaded = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
        ).stdout.split()
        return set(loaded) & set(EXTRA_OF_MODULE)

    # grpc itself imports grpc_health and grpc_reflection where they are installed
    by_the_core = optional_modules_loaded_by("import numpy, gymnasium, grpc, google.protobuf, pydantic")
    by_the_client_path = optional_modules_loaded_by(
        "import gymnasium as gym, gymserve, gymserve.serving, gymserve.policies\n"
        "from gymserve.serving.client import RemotePolicy\n"
        "env = gym.make('gymserve/CartPole-v1'); env.reset(seed=0); env.step(0)"
    )
    assert by_the_client_path == by_the_core


def canonical(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def requirements_of_extra(extras: dict[str, list[str]], extra: str) -> set[str]:
    """The distributions `gymserve[extra]` lists, with the extras it names (gymserve[train]) expanded."""
    names: set[str] = set()
    for requirement in extras[extra]:
        if requirement.startswith("gymserve["):
            for named in requirement[len("gymserve[") : -1].split(","):
                names |= requirements_of_extra(extras, named)
        else:
            names.add(canonical(requirement))
    return names


def distribution_requirements(name: str) -> list[str]:
    try:
        requirements = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [requirement for requirement in requirements if "extra ==" not in requirement]
