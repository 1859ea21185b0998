"""``write_whole``: the new content or the old one, never half, and no temporary file left."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelbaton import files
from modelbaton.files import write_whole


def test_write_whole_replaces_and_leaves_nothing_beside(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_whole(path, "old")
    write_whole(path, b"new \xe2\x9c\x93")
    assert path.read_text(encoding="utf-8") == "new \u2713"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    write_whole(path, "old")

    def broken(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        write_whole(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
