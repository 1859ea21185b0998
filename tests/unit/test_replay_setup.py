"""replay-check replays as the project's workers run: their data converter (a payload codec),
their plugins and their sandbox passthrough, from the project config. The example's committed
histories, re-encoded with a zlib codec as a worker with that codec would have written them,
fail without the converter and pass with it, named directly or carried by a plugin."""

from __future__ import annotations

import base64
import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from typer.testing import CliRunner

from modelbaton.app.main import baton
from workflow_variants.zlib_codec import ENCODING

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "invoice_extraction" / "modelbaton.toml"
CODEC = "workflow_variants.zlib_codec"
runner = CliRunner()


#: What a codec never sees: search attributes, headers (the SDK's default), and the patch
#: markers the SDK core writes itself.
UNENCODED = {"searchAttributes", "header", "markerRecordedEventAttributes"}


def encode(node: Any) -> int:
    """Encode in place every payload under ``node`` that a worker's codec would have encoded;
    return how many."""
    if isinstance(node, list):
        return sum(encode(x) for x in node)
    if not isinstance(node, dict):
        return 0
    if set(node) >= {"metadata", "data"} and "encoding" in node["metadata"]:
        inner = Payload(
            metadata={k: base64.b64decode(v) for k, v in node["metadata"].items()},
            data=base64.b64decode(node["data"]),
        )
        node["metadata"] = {"encoding": base64.b64encode(ENCODING).decode()}
        node["data"] = base64.b64encode(zlib.compress(inner.SerializeToString())).decode()
        return 1
    return sum(encode(v) for k, v in node.items() if k not in UNENCODED)


@pytest.fixture
def encoded(tmp_path: Path) -> Path:
    """The example's project over its histories, every payload zlib-encoded."""
    folder = tmp_path / "ex"
    shutil.copytree(EXAMPLE.parent / "histories", folder / "histories")
    count = 0
    for path in (folder / "histories").rglob("*.json"):
        doc = json.loads(path.read_text())
        count += encode(doc)
        path.write_text(json.dumps(doc))
    assert count > 20  # inputs, activity results, the result: not a vacuous re-encoding
    return folder


def project(folder: Path, extra: str = "") -> str:
    config = folder / "modelbaton.toml"
    config.write_text(
        EXAMPLE.read_text().replace(
            'python_path = [".."]',
            f'python_path = ["{EXAMPLE.parents[1]}", "{Path(__file__).parents[1]}"]',
        )
        + extra
    )
    return str(config)


def replay_check(config: str) -> Any:
    return runner.invoke(baton, ["replay-check", "--project", config, "--processes", "1"])


def test_without_the_projects_codec_the_encoded_histories_do_not_replay(encoded: Path) -> None:
    result = replay_check(project(encoded))
    assert result.exit_code == 1, result.output
    assert "replayed 5: 0 passed, 5 failed" in result.stdout


def test_the_projects_data_converter_decodes_them(encoded: Path) -> None:
    result = replay_check(project(encoded, f'data_converter = "{CODEC}:CONVERTER"\n'))
    assert result.exit_code == 0, result.output
    assert "replayed 5: 5 passed, 0 failed" in result.stdout


def test_a_plugin_that_carries_the_codec_decodes_them_in_worker_processes(encoded: Path) -> None:
    config = project(encoded, f'plugins = ["{CODEC}:PLUGIN"]\npassthrough_modules = ["zlib"]\n')
    # Two processes: the plugin is imported again where the replay runs.
    result = runner.invoke(baton, ["replay-check", "--project", config, "--processes", "2"])
    assert result.exit_code == 0, result.output
    assert "replayed 5: 5 passed, 0 failed" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (f'data_converter = "{CODEC}:NOT_A_CONVERTER"\n', "data_converter: "),
        (f'plugins = ["{CODEC}:NOT_A_CONVERTER"]\n', "plugins[0]: "),
        (f'plugins = ["{CODEC}:MISSING"]\n', "plugins[0]: module "),
        ('passthrough_modules = ["nosuchmod_xyz"]\n', "passthrough_modules[0]: module "),
    ],
)
def test_a_bad_replay_setup_is_one_line_naming_the_key(
    encoded: Path, extra: str, message: str
) -> None:
    config = project(encoded, extra)
    result = replay_check(config)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {config}: {message}"), lines[0]
