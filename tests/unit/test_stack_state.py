"""The stack file records the catalog and model cache a stack was started with, so that a
repair and every shell pointed at the stack read the same ones; older files without them still
load (tolerant reader)."""

from __future__ import annotations

import json
from pathlib import Path

from modelbaton.stack.layout import StackState, child_env, load_state, stack_variables, write_state


def state(tmp_path: Path, **extra: str | None) -> StackState:
    return StackState(
        home=tmp_path,
        temporal_address="127.0.0.1:7233",
        namespace="default",
        ui_url=None,
        model_base_url="http://127.0.0.1:8601",
        task_queue="q",
        release="shadow",
        started_at="now",
        **extra,  # type: ignore[arg-type]
    )


def test_the_catalog_and_cache_reach_every_process_of_the_stack(tmp_path: Path) -> None:
    given = state(tmp_path, catalog="/demo/catalog.toml", cache_dir="/cache")
    write_state(given)
    loaded = load_state(tmp_path)
    assert loaded is not None
    assert (loaded.catalog, loaded.cache_dir) == ("/demo/catalog.toml", "/cache")
    variables = stack_variables(loaded)
    assert variables["MODELBATON_CATALOG"] == "/demo/catalog.toml"
    assert variables["MODELBATON_CACHE_DIR"] == "/cache"
    assert child_env(loaded)["MODELBATON_CATALOG"] == "/demo/catalog.toml"


def test_without_them_the_environment_decides_and_old_files_load(tmp_path: Path) -> None:
    plain = state(tmp_path)
    assert "MODELBATON_CATALOG" not in stack_variables(plain)
    write_state(plain)
    path = tmp_path / "stack.json"
    doc = json.loads(path.read_text())
    for key in ("catalog", "cache_dir"):
        del doc[key]
    path.write_text(json.dumps(doc))
    loaded = load_state(tmp_path)
    assert loaded is not None
    assert (loaded.catalog, loaded.cache_dir) == (None, None)
