"""scripts/record_histories.py never overwrites a committed history unless asked by name."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "record_histories.py"


def recorded() -> list[tuple[str, int]]:
    files = (ROOT / "tests").glob("*histories/*/*.json")
    return sorted((str(p), p.stat().st_mtime_ns) for p in files)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "name the releases to record (known: initial, patched"),
        (["nope"], "unknown releases ['nope']"),
        (["initial"], "initial: histories already recorded in tests/histories/initial"),
        (["patched", "complete"], "tests/lifecycle_histories/complete; they are the authentic"),
    ],
)
def test_refused_in_one_line_before_anything_runs(
    argv: list[str], says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = recorded()
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *argv])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert says in err
    assert recorded() == before


def test_overwrite_given_with_the_release_named_is_allowed() -> None:
    script = runpy.run_path(str(SCRIPT))
    assert script["refusal"](["--overwrite", "initial"]) is None
    assert "name the releases" in script["refusal"](["--overwrite"])
