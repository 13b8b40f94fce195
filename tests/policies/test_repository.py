"""The NAME/VERSION layout: which folders are versions, and why the others are skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gymserve.policies.repository import MAX_VERSION, PolicyDirectory, scan_policy_directory


def make_version(directory: Path, name: str, with_file: bool = True) -> None:
    (directory / name).mkdir(parents=True)
    if with_file:
        (directory / name / "policy.json").write_text("{}")


def test_versions_are_int64_decimal_folders_and_everything_else_is_ignored_with_a_reason(tmp_path: Path):
    for name in ("2", "10", "01", "1", "²", "notes", str(MAX_VERSION), str(MAX_VERSION + 1)):
        make_version(tmp_path, name)
    make_version(tmp_path, "7", with_file=False)
    scan = scan_policy_directory("p", tmp_path)
    assert [(v.version, v.path.name) for v in scan.versions] == [
        (1, "1"),
        (2, "2"),
        (10, "10"),
        (MAX_VERSION, str(MAX_VERSION)),
    ]
    assert {entry.entry: entry.reason for entry in scan.ignored} == {
        "p/01": "version 1 is spelled more than once (01, 1)",
        "p/7": "empty version directory (an export still being copied in?)",
        "p/notes": "not a version: version directories are named by decimal integers",
        "p/²": "not a version: version directories are named by decimal integers",
        f"p/{MAX_VERSION + 1}": f"version {MAX_VERSION + 1} is larger than {MAX_VERSION}, the largest int64",
    }


def test_a_directory_that_is_an_export_is_version_1_and_its_own_folders_are_not_reported(tmp_path: Path):
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "policy.json").write_text("{}")
    scan = scan_policy_directory("p", tmp_path)
    assert [(v.version, v.path) for v in scan.versions] == [(1, tmp_path)]
    assert scan.ignored == []


def test_spellings_of_one_number_without_the_plain_one_are_all_ignored(tmp_path: Path):
    for name in ("03", "003"):
        make_version(tmp_path, name)
    scan = scan_policy_directory("p", tmp_path)
    assert scan.versions == []
    assert sorted(entry.entry for entry in scan.ignored) == ["p/003", "p/03"]


def test_a_missing_policy_directory_has_no_versions_and_says_so(tmp_path: Path):
    scan = scan_policy_directory("p", tmp_path / "gone")
    assert scan.versions == []
    assert [(entry.entry, entry.reason) for entry in scan.ignored] == [
        ("p", "the policy directory does not exist")
    ]


def test_loading_a_pretrained_policy_never_imports_grpc():
    script = (
        "import sys, gymserve.pretrained, gymserve.policies\n"
        "gymserve.policies.load(gymserve.pretrained.pretrained_policy_for_env('gymserve/CartPole-v1').path)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'grpc'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_staging_folders_are_never_versions_and_alone_make_no_version(tmp_path: Path):
    (tmp_path / ".5.0123abcd.tmp" / "saved_model").mkdir(parents=True)
    assert scan_policy_directory("p", tmp_path) == PolicyDirectory(), (
        "an export being written is not a failure"
    )
    make_version(tmp_path, "3")
    scan = scan_policy_directory("p", tmp_path)
    assert [(v.version, v.path.name) for v in scan.versions] == [(3, "3")] and scan.ignored == []
