"""``baton demo`` end to end (the smallest batches), kept running, then stopped by ``dev down``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.models.catalog import Catalog
from modelbaton.stack import embedded, processes

pytestmark = pytest.mark.integration


@pytest.mark.slow(seconds=260)
@pytest.mark.timeout(480)
async def test_demo_keep_then_dev_down(
    tmp_path: Path, model_cache: Path, reference_catalog: Catalog
) -> None:
    home = tmp_path / "demo"
    env = {"MODELBATON_HOME": str(tmp_path), "MODELBATON_CACHE_DIR": str(model_cache)}
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke,
            baton,
            ["demo", "--per-batch", "2", "--keep", "--home", str(home)],
            env=env,
        )
        assert result.exit_code == 0, result.output
        assert "demo OK" in result.output
        assert "rollout audit trail" in result.output
        assert "controller promoted: baseline is now v3" in result.output
        assert "controller aborted at step 1" in result.output
        assert "controller-rollback" in result.output
        # The quietly wrong v4 is stopped by agreement alone, and no document keeps its answer.
        assert "agreement fail" in result.output
        assert "reviews used: 0" in result.output
        assert "documents whose current result is an unreviewed v4 answer: 0" in result.output
        assert "blue-green cutover" in result.output
        assert "documents per build: {'blue': 2, 'green': 2}" in result.output
        assert "baton drain exit code 0" in result.output
        # The reviewers waited for the drain's first count: it saw both blue documents in flight.
        assert "drained modelbaton-demo-bluegreen:blue in " in result.output
        assert "(2 in flight at the start)" in result.output
        assert "baton dev down --home" in result.output
        status = embedded.stack_status(home)
        assert status.running
        kept = [p.record for p in status.processes]
    finally:
        down = CliRunner().invoke(baton, ["dev", "down", "--home", str(home)], env=env)
    assert down.exit_code == 0, down.output
    assert not any(processes.is_ours(p) for p in kept)
