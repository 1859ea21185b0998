"""Rollout plans (TOML, validation that names the step and field) and gate verdicts, on values
worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelbaton.controller.gates import (
    ArmMetrics,
    Metrics,
    Verdict,
    canary_gates,
    overall,
    shadow_gates,
)
from modelbaton.controller.plan import Gates, load_plan, parse_duration, parse_plan
from modelbaton.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), (2.5, 2.5), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0), ("250ms", 0.25)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5x", "-3s", True, None, "m"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def plan(*steps: dict[str, object], **top: object) -> dict[str, object]:
    return {"candidate": "v3", "steps": list(steps), **top}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            plan({"kind": "canary", "fraction": 2}),
            "p.toml: steps[1] (canary).fraction: Input should be less than or equal to 1",
        ),
        (
            plan({"kind": "canary", "fraction": 0.1, "bake": "5x"}),
            "steps[1] (canary).bake: Value error, expected a duration",
        ),
        (plan({"kind": "promote"}, {"kind": "warp"}), "steps[2] (warp): Input tag 'warp'"),
        (
            plan({"kind": "canary", "fraction": 0.1, "bogus": 1}),
            "steps[1] (canary).bogus: Extra inputs",
        ),
        (plan({"kind": "promote"}, gates={"max_stuk": 1}), "gates.max_stuk: Extra inputs"),
        (plan(), "steps: List should have at least 1 item"),
        ({"steps": [{"kind": "promote"}]}, "p.toml: candidate: Field required"),
        (
            plan({"kind": "promote"}, {"kind": "canary", "fraction": 0.1}),
            "only a drain step may follow the promote step",
        ),
        (
            plan({"kind": "canary", "fraction": 0.5}, {"kind": "canary", "fraction": 0.2}),
            "canary fractions must not decrease, got [0.5, 0.2]",
        ),
        (
            plan({"kind": "canary", "fraction": 0.5}, {"kind": "shadow"}),
            "a shadow step must come before the canary steps",
        ),
        (plan({"kind": "drain"}), "a drain step must come after the promote step"),
        (plan({"kind": "promote"}, on_failure="panic"), "on_failure: Input should be"),
    ],
)
def test_plan_errors_name_the_step_and_field(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_plan(doc, "p.toml")
    assert message in str(err.value)


def test_plan_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(
        'candidate = "v3"\npoll = "2s"\n[gates]\nmax_stuck = 1\n'
        '[[steps]]\nkind = "shadow"\nsample = 0.5\ndocuments = 50\nmax_wait = "30m"\n'
        '[[steps]]\nkind = "canary"\nfraction = 0.05\nbake = "5m"\n'
        '[[steps]]\nkind = "promote"\n[[steps]]\nkind = "drain"\ndeadline = "1h"\n'
    )
    path.write_text(
        path.read_text().replace("max_stuck = 1", "max_stuck = 1\nmax_p95_latency_ratio = false")
    )
    loaded = load_plan(path)
    assert loaded.gates.max_p95_latency_ratio is None
    assert loaded.poll == 2.0
    assert loaded.gates.max_stuck == 1
    assert [s.kind for s in loaded.steps] == ["shadow", "canary", "promote", "drain"]
    assert loaded.steps[0].max_wait == 1800.0  # type: ignore[union-attr]
    assert loaded.steps[1].bake == 300.0  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="cannot read rollout plan"):
        load_plan(tmp_path / "missing.toml")
    path.write_text("candidate = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plan(path)


def verdicts(results: list[object]) -> dict[str, str]:
    return {r.gate: r.verdict.value for r in results}  # type: ignore[attr-defined]


GATES = Gates(min_reviewed=10)
HEALTHY = ArmMetrics(completed=100, p95_latency_ms=200.0, reviewed_or_waiting=10)


def test_canary_gates_pass_on_a_healthy_candidate() -> None:
    cand = ArmMetrics(completed=20, p95_latency_ms=300.0, reviewed_or_waiting=3)
    results = canary_gates(Metrics(baseline=HEALTHY, candidate=cand), GATES, min_documents=20)
    assert verdicts(results) == {
        "failure rate": "pass",
        "stuck workflows": "pass",
        "p95 latency": "pass",  # 1.5x, limit 3x
        "review share": "pass",  # 15 % against 10 %, limit +20 %
        "reviewed accuracy": "pass",  # not judged: no reviews
    }
    assert overall(results) is Verdict.PASS


def test_canary_gates_wait_for_data_then_fail_fast_on_failures() -> None:
    few = ArmMetrics(completed=5)
    results = canary_gates(Metrics(baseline=HEALTHY, candidate=few), GATES, min_documents=20)
    assert overall(results) is Verdict.INCONCLUSIVE
    # 11 of 12 failing or retrying: enough failures decide before min_documents is reached.
    failing = ArmMetrics(completed=1, failed=3, retrying=8)
    results = canary_gates(Metrics(baseline=HEALTHY, candidate=failing), GATES, min_documents=20)
    assert verdicts(results)["failure rate"] == "fail"
    assert "candidate 91.7% of 12 failed or retrying" in results[0].measured
    # 2 failures of 30 (6.7 %) against a baseline at 0 %: over the +5 % limit.
    some = ArmMetrics(completed=28, failed=2, p95_latency_ms=200.0)
    results = canary_gates(Metrics(baseline=HEALTHY, candidate=some), GATES, min_documents=20)
    assert verdicts(results)["failure rate"] == "fail"


def test_canary_gates_stuck_latency_review_and_accuracy() -> None:
    cand = ArmMetrics(
        completed=40,
        stuck=1,
        p95_latency_ms=700.0,
        reviewed_or_waiting=20,
        reviewed=10,
        reviewed_correct=6,
    )
    base = HEALTHY.model_copy(update={"reviewed": 10, "reviewed_correct": 9})
    results = canary_gates(Metrics(baseline=base, candidate=cand), GATES, min_documents=20)
    assert verdicts(results) == {
        "failure rate": "pass",
        "stuck workflows": "fail",
        "p95 latency": "fail",  # 3.5x
        "review share": "fail",  # 50 % against 10 %
        "reviewed accuracy": "fail",  # 60 % against 90 %, limit -5 %
    }
    off = Gates(
        max_stuck=None,
        max_p95_latency_ratio=None,
        max_review_share_increase=None,
        max_accuracy_drop=None,
    )
    results = canary_gates(Metrics(baseline=base, candidate=cand), off, min_documents=20)
    assert verdicts(results) == {"failure rate": "pass"}


def test_shadow_gates() -> None:
    waiting = Metrics(shadow_compared=40)
    (r,) = shadow_gates(waiting, GATES, documents=50)
    assert (r.verdict, r.measured) == (Verdict.INCONCLUSIVE, "40 of 50 comparisons in")
    ready = Metrics(shadow_compared=50, shadow_ready=True, shadow_summary="READY")
    assert shadow_gates(ready, GATES, 50)[0].verdict is Verdict.PASS
    not_ready = Metrics(shadow_compared=50, shadow_ready=False, shadow_summary="NOT READY")
    assert shadow_gates(not_ready, GATES, 50)[0].verdict is Verdict.FAIL
    lax = GATES.model_copy(update={"require_shadow_ready": False})
    assert shadow_gates(not_ready, lax, 50)[0].verdict is Verdict.PASS
