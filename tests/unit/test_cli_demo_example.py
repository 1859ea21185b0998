"""``baton demo --example NAME``: loads ``examples/NAME/demo.py`` and runs its ``main``; an
unknown example is a one-line usage error (exit 2)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from modelbaton.app.commands import EXAMPLES, known_examples, run_example
from modelbaton.app.main import baton as app


def test_the_repository_examples_with_a_demo_are_known() -> None:
    assert "invoice_extraction" in known_examples()
    assert (EXAMPLES / "invoice_extraction" / "demo.py").is_file()


@pytest.mark.parametrize("name", ["nope", "../examples", ""])
def test_an_unknown_example_is_one_line_and_exit_2(name: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--example", name])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"--example {name!r}: no such example with a demo" in lines[0]
    assert "known: invoice_extraction" in lines[0]
    assert "Traceback" not in result.output


def test_without_an_examples_folder_it_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(typer.Exit) as exit_:
        run_example("invoice_extraction", tmp_path / "missing")
    assert exit_.value.exit_code == 2


def test_it_runs_the_examples_main_and_exits_with_its_code(tmp_path: Path) -> None:
    name = f"fake_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "demo.py").write_text("def main() -> int:\n    return 7\n")
    assert known_examples(tmp_path) == [name]
    assert run_example(name, tmp_path) == 7
