"""``baton dev up`` starts the rollout dashboard and gives each worker a metrics endpoint;
``baton dev status`` shows where. Every process is stopped by PID in the fixture."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from modelbaton.cli.dev import app as dev_app
from modelbaton.stack import embedded, processes
from modelbaton.stack.embedded import StackOptions
from waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "stack"
    yield home
    embedded.stop_stack(home)


@pytest.mark.slow(seconds=30)
@pytest.mark.timeout(300)
async def test_dev_up_serves_the_dashboard_and_worker_metrics(home: Path) -> None:
    state = embedded.start_stack(
        StackOptions(
            home=home,
            models=False,
            workers=1,
            pools=(),
            dashboard=True,
            ephemeral_ports=True,
        )
    )
    assert state.dashboard_url is not None
    status = CliRunner().invoke(dev_app, ["status", "--home", str(home), "--json"])
    assert status.exit_code == 0, status.output
    reported = json.loads(status.stdout)
    assert reported["dashboard_url"] == state.dashboard_url
    human = CliRunner().invoke(dev_app, ["status", "--home", str(home)])
    assert f"dashboard  {state.dashboard_url}" in human.output
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(state.dashboard_url)
        assert page.status_code == 200, page.text
        assert "No rollout yet" in page.text
        assert state.ui_url is not None
        assert f'href="{state.ui_url}"' in page.text  # the stack's Temporal Web UI
        (worker,) = state.workers
        assert worker.port is not None
        host = state.temporal_address.rpartition(":")[0]

        async def sdk_metrics() -> bool:
            text = (await http.get(f"http://{host}:{worker.port}/metrics")).text
            return f'task_queue="{state.task_queue}"' in text and "temporal_" in text

        await eventually(sdk_metrics, within=30, what="the worker's SDK metrics")
    dashboard = state.process(embedded.DASHBOARD)
    assert dashboard is not None
    stopped = embedded.stop_stack(home)
    assert (embedded.DASHBOARD, dashboard.pid, "terminated") in [
        (s.name, s.pid, s.outcome) for s in stopped
    ]
    assert not processes.is_ours(dashboard)
