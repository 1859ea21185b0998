"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) over a real rollout
with a shadow: what the page shows is checked against visibility counts and database rows that
the test reads itself. Also: action requests without the token are refused, and ``baton ui``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from scipy.stats import binomtest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from modelbaton import Comparison, ComparisonActivities, ComparisonRecord
from modelbaton.app.main import baton
from modelbaton.dashboard.app import UiConfig, create_app
from modelbaton.models.corpus import BASE_CLASSES, generate_corpus
from modelbaton.models.server import serve_in_thread
from modelbaton.pipeline.messages import WORKFLOW_TYPE
from modelbaton.rollout.client import Rollouts
from modelbaton.rollout.messages import ChangeBy
from modelbaton.shadow.store import ShadowStore
from pipeline_fixtures import Pipeline
from waiting import eventually

pytestmark = pytest.mark.integration
BY = ChangeBy(actor="dashboard-test", reason="see it on the page")
TEMPORAL_UI = "http://temporal-ui.test:8233"
CHROMIUM = os.environ.get("MODELBATON_CHROMIUM", "/usr/bin/chromium")
INVOICES = [
    f"INVOICE {i} amount due $12.00 payment terms net 30 bill to Fabrikam" for i in range(6)
]
#: Shadowed documents of every class, so that the arms can disagree (a seed of its own: these
#: are not the documents the reference models trained on).
MIXED = [d.text for d in generate_corpus(24, 2024, BASE_CLASSES)]


def chromium() -> str:
    """Debian's Chromium; a missing one fails the test (never a skip, never a download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run scripts/install-chromium (apt-get install "
            "chromium), or set MODELBATON_CHROMIUM to its executable"
        )
    return CHROMIUM


@contextmanager
def dashboard(pipeline: Pipeline, token: str | None = None) -> Iterator[str]:
    """The dashboard app of ``pipeline`` served on an ephemeral port; yields its URL."""
    target = pipeline.client.service_client.config.target_host
    namespace = pipeline.client.namespace

    async def connect() -> Client:
        # The server runs its own event loop (its own thread), so it gets its own client.
        return await Client.connect(
            target, namespace=namespace, data_converter=pydantic_data_converter
        )

    app = create_app(
        UiConfig(
            connect=connect,
            catalog=pipeline.catalog,
            task_queue=pipeline.task_queue,
            database_url=pipeline.store.url,
            temporal_ui_url=TEMPORAL_UI,
            refresh_seconds=1.0,
            action_token=token,
        )
    )
    try:
        with serve_in_thread(app) as url:
            yield url
    finally:
        app.state.store.close()


async def visibility(client: Client, task_queue: str, rollout_id: str) -> dict[str, dict[str, int]]:
    """Per arm, the counts the page must show, asked of visibility here."""
    counts: dict[str, dict[str, int]] = {}
    for arm in ("baseline", "candidate"):
        base = (
            f'WorkflowType = "{WORKFLOW_TYPE}" AND TaskQueue = "{task_queue}" '
            f'AND RolloutId = "{rollout_id}" AND RolloutArm = "{arm}"'
        )

        async def n(extra: str, base: str = base) -> int:
            return (await client.count_workflows(f"{base} AND {extra}")).count

        counts[arm] = {
            "running": await n('ExecutionStatus = "Running"'),
            "waiting": await n('ExecutionStatus = "Running" AND ReviewState = "pending"'),
            "completed": await n('ExecutionStatus = "Completed"'),
            "failed": await n(
                'ExecutionStatus IN ("Failed", "Terminated", "TimedOut", "Canceled")'
            ),
        }
    return counts


async def page_counts(page: Any) -> dict[str, dict[str, int]]:
    shown: dict[str, dict[str, int]] = {}
    for arm in ("baseline", "candidate"):
        shown[arm] = {
            kind: int(await page.inner_text(f'[data-testid="arm-{arm}-{kind}"]'))
            for kind in ("running", "waiting", "completed", "failed")
        }
    return shown


def pct(value: float) -> str:
    return f"{value:.1%}".replace("%", " %")


async def shadow_of_v1(rollouts: Rollouts) -> Any:
    """Once v1's pool polls: a rollout in which v1 shadows every document of the baseline, v2."""
    await eventually(lambda: rollouts.pool_pollers("v1"), what="v1's pool polling")
    return await rollouts.start("v1", 0.0, BY, sample=1.0, shadow_budget_seconds=30.0)


@pytest.mark.timeout(300)
async def test_the_page_shows_a_shadowed_rollout_as_visibility_and_the_database_see_it(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    executable = chromium()
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    # v1 against v2: the reference models really disagree on some classes.
    async with pipeline.worker(pools=["v1", "v2"]):
        plan = await shadow_of_v1(rollouts)
        rollout_id = plan.rollout_id or ""
        shadowed = [await pipeline.start(pipeline.doc(t), plan=plan) for t in MIXED]
        for handle in shadowed:
            await handle.result()
        shadows = ShadowStore(pipeline.store.engine)
        await eventually(
            lambda: len(shadows.rows(rollout_id)) == len(MIXED), what="every comparison"
        )
        # The canary: half the keys to the candidate; one document waits for a review.
        plan = await rollouts.set_fraction(0.5, BY)
        # Documents (fresh ids, so fresh buckets) until the plan puts some on each arm: six at
        # 50 % all fell on the baseline once in a full run (1 in 64).
        docs = [pipeline.doc(t) for t in INVOICES]
        while len({plan.assign(d.document_id, pipeline.task_queue).arm for d in docs}) < 2:
            docs = [pipeline.doc(t) for t in INVOICES]
        canary = [await pipeline.start(d, plan=plan) for d in docs]
        for handle in canary:
            await handle.result()
        waiting = await pipeline.start(pipeline.doc(), plan=plan, threshold=1.0)

        rows = [r for r in shadows.rows(rollout_id) if r.agree is not None]
        assert len(rows) == len(MIXED)  # both arms answered every document
        agreed = sum(1 for r in rows if r.agree)
        interval = binomtest(agreed, len(rows)).proportion_ci(method="wilson")
        expected_shadow = f"{pct(agreed / len(rows))} [{pct(interval.low)}, {pct(interval.high)}]"

        with dashboard(pipeline) as url:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=executable)
                page = await browser.new_page(viewport={"width": 1440, "height": 900})
                await page.goto(url)
                assert await page.title() == f"modelbaton · doc-classifier on {pipeline.task_queue}"

                async def matches() -> bool:
                    await page.reload()
                    want = await visibility(pipeline.client, pipeline.task_queue, rollout_id)
                    got = await page_counts(page)
                    assert got == want
                    # Settled: every document is counted, the waiting one as waiting.
                    total = sum(want[a]["completed"] + want[a]["running"] for a in want)
                    return (
                        total == len(MIXED) + len(INVOICES) + 1
                        and sum(want[a]["waiting"] for a in want) == 1
                    )

                await eventually(matches, within=30, every=1.0, what="page counts = visibility")
                shown = await page_counts(page)
                assert shown["candidate"]["completed"] > 0  # the canary served some

                current = await page.inner_text('[data-testid="current-step"]')
                assert "canary 50%" in current
                timeline = await page.inner_text('[data-testid="timeline"]')
                assert "shadow 100% of documents" in timeline
                assert "candidate v1 against baseline v2" in timeline
                agreement = await page.inner_text('[data-testid="shadow-agreement"]')
                assert agreement == expected_shadow
                n = await page.inner_text('[data-testid="shadow-n"]')
                assert n == f"{len(rows)} documents"
                confusion = await page.inner_text('[data-testid="confusion"]')
                assert "v2 \\ v1" in confusion
                latency = await page.inner_text('[data-testid="latency"]')
                assert "baseline v2" in latency
                assert "candidate v1" in latency
                assert " ms" in latency
                audit = await page.inner_text('[data-testid="audit"]')
                assert "start-shadow" in audit
                assert "set-fraction" in audit
                # Read-only: no action is offered.
                assert await page.locator('[data-testid="actions"]').count() == 0
                # Every listed workflow links into the Temporal Web UI, the waiting one too.
                link = page.locator(f'a[href*="/workflows/{waiting.id}/"]')
                assert await link.count() == 1
                href = await link.get_attribute("href")
                assert href == (
                    f"{TEMPORAL_UI}/namespaces/{pipeline.client.namespace}/workflows/"
                    f"{waiting.id}/{waiting.result_run_id}/history"
                )

                # It refreshes by itself: a new document appears without a reload.
                before = shown["baseline"]["completed"] + shown["candidate"]["completed"]
                extra = await pipeline.start(pipeline.doc(), plan=plan)
                await extra.result()

                async def refreshed() -> bool:
                    now = await page_counts(page)
                    return now["baseline"]["completed"] + now["candidate"]["completed"] > before

                await eventually(refreshed, within=30, what="the page refreshed itself")

                await page.goto(url)
                shot = tmp_path / "dashboard.png"
                await page.screenshot(path=str(shot), full_page=True)
                await browser.close()
        assert shot.stat().st_size > 20_000
        print(f"dashboard screenshot: {shot}")
        await waiting.terminate("test over")


async def test_a_shadow_compared_per_field_shows_its_fields_and_no_label_confusion(
    pipeline: Pipeline,
) -> None:
    """A pipeline whose comparator records fields (an extraction's, through
    ``ComparisonActivities``): the page shows agreement per field, with its interval, and no
    label confusion, since its answers have no labels."""
    from playwright.async_api import async_playwright

    executable = chromium()
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v1", "v2"]):
        plan = await shadow_of_v1(rollouts)
    rollout_id = plan.rollout_id or ""
    acts, env = ComparisonActivities(pipeline.store.engine), ActivityEnvironment()
    for i in range(10):
        fields = {"total": i < 7, "currency": True}
        comparison = Comparison(agree=all(fields.values()), fields=fields)
        await env.run(
            acts.record,
            ComparisonRecord(
                rollout_id=rollout_id,
                document_id=f"inv-{i}",
                primary_version="v2",
                other_version="v1",
                comparison=comparison,
            ),
        )
    total = binomtest(7, 10).proportion_ci(method="wilson")
    currency = binomtest(10, 10).proportion_ci(method="wilson")
    with dashboard(pipeline) as url:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=executable)
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            await page.goto(url)
            fields = page.locator('[data-testid="agreement-by-field"]')
            await fields.wait_for()
            rows = [
                " ".join((await r.inner_text()).split())
                for r in await fields.locator("tbody tr").all()
            ]
            assert rows == [
                f"currency 100.0 % [{pct(currency.low)}, {pct(currency.high)}] 10",
                f"total 70.0 % [{pct(total.low)}, {pct(total.high)}] 10",
            ]
            assert await page.inner_text('[data-testid="shadow-n"]') == "10 documents"
            assert await page.locator('[data-testid="confusion"]').count() == 0
            await browser.close()


async def test_an_action_without_the_token_is_refused(pipeline: Pipeline) -> None:
    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    async with pipeline.worker(pools=["v2", "v3"]):
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3's pool polling")
        plan = await rollouts.start("v3", 0.2, BY)
        with dashboard(pipeline, token="s3cret-token") as url:
            async with httpx.AsyncClient(base_url=url) as http:
                page = await http.get("/")
                assert page.status_code == 200
                assert 'data-testid="actions"' not in page.text  # not signed in
                refused = [
                    await http.post("/actions/promote", data={"reason": "x"}),
                    await http.post(
                        "/actions/abort", headers={"Authorization": "Bearer wrong-token"}
                    ),
                    # The cookie holds a digest of the token, never the token itself.
                    await http.post("/actions/abort", headers={"Cookie": "baton_ui=s3cret-token"}),
                    await http.post("/login", data={"token": "nope"}),
                ]
                assert [r.status_code for r in refused] == [401, 401, 401, 401]
                assert "not authenticated" in refused[0].text
                assert (await rollouts.plan()).revision == plan.revision  # nothing changed
                # Signed in with the token, the page offers the actions and they act.
                login = await http.post("/login", data={"token": "s3cret-token"})
                assert login.status_code == 303
                http.cookies = login.cookies
                signed = await http.get("/")
                assert 'data-testid="actions"' in signed.text
                done = await http.post(
                    "/actions/abort",
                    data={"reason": "seen on the page", "by": "alice"},
                    headers={"Accept": "application/json"},
                )
                assert done.status_code == 200, done.text
        after = await rollouts.plan()
        assert after.revision == plan.revision + 1
        assert after.candidate is None
        last = (await rollouts.audit())[-1]
        assert (last.action, last.actor, last.reason) == ("abort", "alice", "seen on the page")
        with dashboard(pipeline) as url:  # read-only: refused even with a bearer token
            async with httpx.AsyncClient(base_url=url) as http:
                ro = await http.post("/actions/abort", headers={"Authorization": "Bearer x"})
                assert ro.status_code == 403
    # No worker answers the audit trail's query now: the page says so and shows the rest.
    with dashboard(pipeline) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            page = await http.get("/")
    assert page.status_code == 200
    assert "audit trail unavailable: no workflow worker answered its query within 5 s" in page.text
    assert 'data-testid="arm-baseline-running"' in page.text


def cli(*args: str, **env: str) -> Any:
    return CliRunner().invoke(baton, ["ui", *args], env=env)


def test_baton_ui_refuses_bad_input(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    no_token = cli("--allow-actions", MODELBATON_HOME=home, MODELBATON_UI_TOKEN="")
    assert no_token.exit_code == 2
    assert "--allow-actions needs MODELBATON_UI_TOKEN" in no_token.output
    bad_url = cli("--temporal-ui", "ftp://x", MODELBATON_HOME=home)
    assert bad_url.exit_code == 2
    assert "--temporal-ui must be an http(s) URL" in bad_url.output
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = cli("--port", port, MODELBATON_HOME=home)
    assert busy.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in busy.output
    bad_db = cli("--port", "0", MODELBATON_HOME=home, MODELBATON_DATABASE_URL="mysql://x/y")
    assert bad_db.exit_code == 2
    assert "cannot open the results database (MODELBATON_DATABASE_URL)" in bad_db.output
    unknown = cli("--nope")
    assert unknown.exit_code == 2
    for result in (no_token, bad_url, busy, bad_db):
        assert len(result.output.strip().splitlines()) == 1


def test_baton_ui_serves_and_says_when_temporal_does_not_answer(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env |= {
        "MODELBATON_HOME": str(tmp_path / "home"),
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # nothing listens there
        "PYTHONUNBUFFERED": "1",
    }
    baton_bin = str(Path(sys.executable).parent / "baton")
    proc = subprocess.Popen(
        [baton_bin, "ui", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the per-test timeout bounds this
        assert "(read-only)" in line, line
        url = line.split()[2]
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/healthz").text == "ok"
            page = http.get("/")
            assert page.status_code == 503
            assert "Cannot read the rollout" in page.text
            assert "cannot connect to Temporal at 127.0.0.1:1" in page.text
            css = http.get("/static/dashboard.css")
            assert css.status_code == 200
            assert "http" not in css.text  # nothing fetched from elsewhere
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


async def test_the_controller_on_the_page_and_its_pause_action(pipeline: Pipeline) -> None:
    from modelbaton.controller.client import Controllers
    from modelbaton.controller.messages import Phase
    from modelbaton.controller.plan import parse_plan

    rollouts = Rollouts(pipeline.client, pipeline.catalog, pipeline.task_queue)
    controllers = Controllers(pipeline.client, pipeline.catalog, pipeline.task_queue)
    plan = parse_plan(
        {
            "candidate": "v3",
            "poll": 1,
            "steps": [
                {"kind": "canary", "fraction": 0.2, "bake": "10m", "min_documents": 1},
                {"kind": "canary", "fraction": 0.6, "bake": "10m"},
                {"kind": "promote"},
            ],
        }
    )
    async with pipeline.worker(pools=["v2", "v3"]):
        await eventually(lambda: rollouts.pool_pollers("v3"), what="v3's pool polling")
        await controllers.run(plan, BY)

        async def baking() -> bool:
            view = await controllers.status()
            return view is not None and view.state.phase is Phase.BAKING

        await eventually(baking, what="the controller baking")
        with dashboard(pipeline, token="s3cret-token") as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                page = (await http.get("/")).text
                assert 'data-testid="facts-controller"' in page
                assert "canary 20% (bake 600 s, 1 documents)" in page
                # The steps still to come are on the timeline, as planned.
                assert "canary 60% (bake 600 s, 20 documents)" in page
                assert "planned" in page
                refused = await http.post("/actions/pause")
                assert refused.status_code == 401
                paused = await http.post(
                    "/actions/pause",
                    data={"reason": "looks odd", "by": "bob"},
                    headers={"Authorization": "Bearer s3cret-token", "Accept": "application/json"},
                )
                assert paused.status_code == 200, paused.text
        view = await controllers.status()
        assert view is not None
        assert view.state.paused
        audit = await rollouts.audit()
        await controllers.abort(BY)
        await controllers.handle().result()
    assert (audit[-1].action, audit[-1].actor, audit[-1].reason) == (
        "controller-pause",
        "bob",
        "looks odd",
    )
