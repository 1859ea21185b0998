"""Pool liveness as ``baton submit`` judges it, on the real stack (dev server, model server, pools
and worker as processes started by ``dev up``'s code).

- A pool only a shadow needs, SIGKILLed while documents are submitted: the submit is accepted
  with a warning, and every document reaches downstream on the baseline.
- The primary's pool SIGKILLed 5 s earlier: the submit is refused (the server still lists the
  dead pool's poller; only a recent poll counts), within 10 s of the kill.
- Workers on the pre-patch release, no pool alive at all: ``submit --model v1`` is accepted and
  the documents complete (that code classifies on the workflow queue and uses no pool).

The three are steps of one test on one stack (starting one costs about half a minute here),
so that no scheduler can run a later step without the earlier ones (pytest-xdist's worksteal
moves single tests between workers).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from temporalio.client import Client
from typer.testing import CliRunner

from modelbaton.app.main import baton
from modelbaton.models.catalog import load_catalog
from modelbaton.pipeline.store import ResultsStore
from modelbaton.rollout.client import Rollouts
from modelbaton.settings import Settings
from modelbaton.stack import embedded, processes
from modelbaton.stack.embedded import StackOptions, StackState

#: The first test also pays for the stack's start (and, first in a session, model training).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]


@pytest.fixture
def stack(tmp_path: Path, model_cache: Path) -> Iterator[StackState]:
    root = tmp_path
    text = Settings.from_env().catalog_path.read_text()
    # Every document goes straight downstream (no review), so "reached downstream" is countable.
    catalog = root / "catalog.toml"
    catalog.write_text(text.replace("review_threshold = 0.55", "review_threshold = 0.0"))
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith(("TEMPORAL_", "MODELBATON_"))]:
            env.delenv(name)
        env.setenv("MODELBATON_CACHE_DIR", str(model_cache))
        env.setenv("MODELBATON_CATALOG", str(catalog))
        home = root / "stack"
        options = StackOptions(home=home, ui=False, ephemeral_ports=True, pools=("v2", "v3"))
        try:
            yield embedded.start_stack(options)
        finally:
            embedded.stop_stack(home)


def run(state: StackState, *args: str) -> Result:
    variables = embedded.stack_variables(state)
    return CliRunner().invoke(baton, list(args), env=variables | {"COLUMNS": "200"})


def live_pollers(state: StackState, version: str) -> int:
    async def count() -> int:
        client = await Client.connect(state.temporal_address, namespace=state.namespace)
        catalog = load_catalog(Settings.from_env().catalog_path)
        return await Rollouts(client, catalog, state.task_queue).pool_pollers(version)

    return asyncio.run(count())


def sigkill(record: processes.ProcessRecord) -> float:
    """SIGKILL by the recorded PID; return when it happened (monotonic)."""
    os.kill(record.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    deadline = killed_at + 10
    while processes.is_ours(record):
        assert time.monotonic() < deadline, f"{record.name} still runs after SIGKILL"
        time.sleep(0.05)
    return killed_at


def stored(state: StackState) -> list[str]:
    store = ResultsStore(f"sqlite:///{state.home / 'results.db'}")
    try:
        assert store.superseded() == []
        return [r.document_id for r in store.records()]
    finally:
        store.close()


@pytest.mark.slow(seconds=50)
def test_pool_liveness_as_submit_judges_it(stack: StackState) -> None:
    shadow_pool_down_warns_and_documents_reach_downstream(stack)
    primary_pool_killed_5_s_earlier_is_refused_within_10_s(stack)
    pre_patch_workers_need_no_pool(stack)


def shadow_pool_down_warns_and_documents_reach_downstream(stack: StackState) -> None:
    started = run(
        stack, "rollout", "start", "--candidate", "v3", "--shadow", "--sample", "1",
        "--shadow-budget", "5", "--reason", "liveness test",
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    killed_at = sigkill(stack.pools["v3"])
    # Submit once the dead pool is reported dead (its poller entry stays listed, stale).
    while live_pollers(stack, "v3"):
        assert time.monotonic() - killed_at < 10, "a dead pool must be reported dead within 10 s"
        time.sleep(0.2)
    assert live_pollers(stack, "v2") >= 1
    submitted = run(stack, "submit", "--generate", "20", "--seed", "41", "--wait", "--json")
    assert submitted.exit_code == 0, submitted.output
    assert "warning: no worker polls the pool of v3, which only the shadow uses" in " ".join(
        submitted.stderr.split()
    )
    report = json.loads(submitted.stdout)
    assert report["started"] == 20
    assert report["warnings"]
    assert {d["state"] for d in report["documents"]} == {"completed"}
    current = stored(stack)
    assert len(current) == len(set(current)) == 20


def primary_pool_killed_5_s_earlier_is_refused_within_10_s(stack: StackState) -> None:
    assert live_pollers(stack, "v2") >= 1, "the v2 pool must poll before it is killed"
    killed_at = sigkill(stack.pools["v2"])
    # The scenario itself, not a wait for a state: a pool that died 5 s before the submit.
    time.sleep(max(0.0, killed_at + 5 - time.monotonic()))
    refused = run(stack, "submit", "--generate", "2", "--seed", "42")
    assert time.monotonic() - killed_at <= 10
    assert refused.exit_code == 3, refused.output
    message = " ".join(refused.output.split())
    assert "nothing started: no worker polls the pool of v2" in message
    assert "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert len(stored(stack)) == 20  # nothing new started


def pre_patch_workers_need_no_pool(stack: StackState) -> None:
    state = embedded.restart_workers(stack.home, release="initial")
    assert state.release == "initial"
    assert not any(processes.is_ours(p) for p in state.pools.values()), "no pool may run"
    accepted = run(
        state, "submit", "--model", "v1", "--generate", "3", "--seed", "43", "--wait", "--json"
    )
    assert accepted.exit_code == 0, accepted.output
    report = json.loads(accepted.stdout)
    assert report["started"] == 3
    assert {d["state"] for d in report["documents"]} == {"completed"}
    assert len(stored(state)) == 23
