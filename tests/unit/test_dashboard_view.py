"""The dashboard's pure parts: what the audit trail says of steps and fractions, agreement over
time, Web UI links, charts, and the page a hand-made view model renders to."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from scipy.stats import binomtest

from modelbaton.contracts.rollout import AuditEntry, ModelRef, RolloutPlan
from modelbaton.dashboard import charts
from modelbaton.dashboard.app import _templates
from modelbaton.dashboard.derive import (
    MAX_POINTS,
    agreement_over_time,
    fraction_over_time,
    segments,
    steps_of,
    workflow_url,
)
from modelbaton.dashboard.model import ArmView, DashboardView, Panel, RolloutView

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def entry(minute: int, action: str, detail: str, revision: int = 1) -> AuditEntry:
    return AuditEntry(
        at=T0 + timedelta(minutes=minute),
        actor="ops",
        action=action,
        detail=detail,
        revision=revision,
    )


# The details as the rollout workflow writes them (rollout/workflow.py).
TRAIL = [
    entry(
        0,
        "start-shadow",
        "m-1: candidate v3 shadows baseline v2 on 25.00% of documents "
        "(noise baseline on 5.00% of those)",
    ),
    entry(5, "set-fraction", "shadow -> canary at 10.00%; shadow verdict READY (agreement ...)"),
    entry(9, "set-fraction", "fraction 10.00% -> 50.00%"),
    entry(12, "promote", "m-1: v3 replaces v2"),
    entry(20, "start", "m-2: candidate v4 against baseline v3 at 5.00%"),
    entry(25, "abort", "m-2: v4 withdrawn, v3 serves all"),
    entry(30, "start", "m-3: candidate v5 against baseline v3 at 20.00%"),
]


def test_the_trail_splits_into_rollouts_at_each_start() -> None:
    cut = segments(TRAIL)
    assert [(s.rollout_id, [e.action for e in s.entries]) for s in cut] == [
        ("m-1", ["start-shadow", "set-fraction", "set-fraction", "promote"]),
        ("m-2", ["start", "abort"]),
        ("m-3", ["start"]),
    ]


def test_fraction_over_time_reads_each_change() -> None:
    first, second, _ = segments(TRAIL)
    assert [(p.at.minute, p.fraction) for p in fraction_over_time(first.entries)] == [
        (0, 0.0),
        (5, 0.10),
        (9, 0.50),
        (12, 1.0),
    ]
    assert [p.fraction for p in fraction_over_time(second.entries)] == [0.05, 0.0]


def test_steps_mark_the_last_as_current_only_while_in_progress() -> None:
    first, _, third = segments(TRAIL)
    done = steps_of(first.entries, in_progress=False)
    assert [(s.label, s.state) for s in done] == [
        ("shadow 25% of documents", "done"),
        ("canary 10%", "done"),
        ("canary 50%", "done"),
        ("promoted", "done"),
    ]
    running = steps_of(third.entries, in_progress=True)
    assert [(s.label, s.state) for s in running] == [("canary 20%", "current")]


def row(second: int, agree: bool | None) -> SimpleNamespace:
    # recorded_at naive, as SQLite returns it.
    return SimpleNamespace(agree=agree, recorded_at=datetime(2026, 3, 2, 9, 0, second))


def test_agreement_over_time_is_cumulative_with_wilson_intervals() -> None:
    rows = [row(3, True), row(1, False), row(2, None), row(4, True)]
    points = agreement_over_time(rows)  # type: ignore[arg-type]
    # In recording order, unanswered ones left out: False, True, True.
    assert [(p.n, round(p.rate, 4)) for p in points] == [(1, 0.0), (2, 0.5), (3, 0.6667)]
    assert all(p.at.tzinfo is UTC for p in points)
    # Wilson 95 % for 2 of 3, as scipy computes it.
    expected = binomtest(2, 3).proportion_ci(method="wilson")
    assert points[-1].low == pytest.approx(expected.low)
    assert points[-1].high == pytest.approx(expected.high)


def test_long_series_are_thinned_keeping_the_last_point() -> None:
    rows = [row(i % 60, True) for i in range(500)]
    points = agreement_over_time(rows)  # type: ignore[arg-type]
    assert len(points) <= MAX_POINTS
    assert points[-1].n == 500


def test_workflow_links_point_into_the_web_ui() -> None:
    assert workflow_url("http://ui:8233/", "ns 1", "classify-a/b", "run-1") == (
        "http://ui:8233/namespaces/ns%201/workflows/classify-a%2Fb/run-1/history"
    )
    assert workflow_url(None, "default", "x", "y") is None


def test_charts_name_the_versions_and_their_units() -> None:
    points = fraction_over_time(segments(TRAIL)[0].entries)
    chart = charts.fraction_chart(points, "v3", T0 + timedelta(minutes=15))
    assert "v3" in chart.title
    assert chart.series[0].name == "candidate v3"
    assert [t.label for t in chart.y_ticks] == ["0%", "25%", "50%", "75%", "100%"]
    xs = [float(p.split(",")[0]) for p in chart.series[0].points.split()]
    assert xs == sorted(xs)  # a step line runs forward in time
    assert max(xs) <= charts.WIDTH


def view_with(rollout: RolloutView) -> DashboardView:
    plan = RolloutPlan(model_id="m", baseline=ModelRef(version="v2", output_schema_version=2))
    return DashboardView(
        generated_at=T0,
        namespace="default",
        task_queue="q",
        model_id="m",
        plan=plan,
        plan_text="v2 serves every document (revision 0)",
        rollouts=[],
        selected=rollout,
        temporal_ui_url=None,
    )


def test_a_panel_from_another_feature_renders_on_the_page() -> None:
    first = segments(TRAIL)[-1]
    rollout = RolloutView(
        rollout_id="m-3",
        model_id="m",
        baseline_version="v3",
        candidate_version="v5",
        state="canary",
        in_progress=True,
        fraction=0.2,
        sample=0.0,
        revision=7,
        steps=steps_of(first.entries, True),
        fraction_over_time=fraction_over_time(first.entries),
        arms=[ArmView("baseline", "v3", 2, 1, 40, 0), ArmView("candidate", "v5", 1, 0, 9, 1)],
        shadow=None,
        audit=first.entries,
        workflows=[],
        workflows_url=None,
        rollout_workflow_url=None,
        panels=[
            Panel(
                key="drain",
                title="Drain of build b-41",
                template="panels/facts.html",
                data=[("open workflows", "12 of 40"), ("deadline", "09:45 UTC (in 15 min)")],
            )
        ],
    )
    html = (
        _templates()
        .get_template("_main.html")
        .render(
            view=view_with(rollout),
            charts=charts,
            config=SimpleNamespace(refresh_seconds=5.0),
            signed_in=False,
            actions_enabled=False,
            actions=[],
            notice="",
        )
    )
    assert 'data-testid="panel-drain"' in html
    assert "Drain of build b-41" in html
    assert "09:45 UTC (in 15 min)" in html
    assert 'data-testid="current-step"' in html
    assert "canary 20%" in html
    text = re.sub(r"<[^>]+>", " ", html)
    assert "{" not in text  # no raw JSON (nor an unrendered template tag)
