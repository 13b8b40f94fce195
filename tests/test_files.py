"""Staged writes: readers see the old or the new content, and a failed write leaves nothing behind."""

from __future__ import annotations

import shutil

import pytest

from gymserve.common.files import is_staging, remove_folder, staged, write_text_atomically


def test_text_replaces_the_file_and_leaves_no_staging_file(tmp_path):
    path = tmp_path / "run.json"
    write_text_atomically(path, "old")
    write_text_atomically(path, "new")
    assert path.read_text() == "new"
    assert [entry.name for entry in tmp_path.iterdir()] == ["run.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_staging_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), staged(path) as staging:
        staging.write_text("half")
        assert is_staging(staging) and not is_staging(path)
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [entry.name for entry in tmp_path.iterdir()] == ["run.json"]


def test_a_folder_is_replaced_whole(tmp_path):
    folder = tmp_path / "export"
    for content in ("first", "second"):
        with staged(folder) as staging:
            staging.mkdir()
            (staging / "model").write_text(content)
    assert [entry.name for entry in folder.iterdir()] == ["model"]
    assert (folder / "model").read_text() == "second"
    assert [entry.name for entry in tmp_path.iterdir()] == ["export"]


def test_a_failed_folder_write_removes_the_staging_folder(tmp_path):
    folder = tmp_path / "export"
    with pytest.raises(KeyboardInterrupt), staged(folder) as staging:
        staging.mkdir()
        (staging / "model").write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_hidden_before_it_is_deleted(tmp_path, monkeypatch):
    folder = tmp_path / "7"
    folder.mkdir()
    (folder / "model").write_text("weights")
    remove_folder(folder)
    assert list(tmp_path.iterdir()) == []

    folder.mkdir()
    (folder / "model").write_text("weights")

    def interrupted(path):
        raise KeyboardInterrupt  # as if killed in the middle of deleting

    monkeypatch.setattr(shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        remove_folder(folder)
    [leftover] = tmp_path.iterdir()
    assert is_staging(leftover), "readers skip it: the folder is gone whole, not half"
    assert (leftover / "model").read_text() == "weights"
