"""Rollout plans (TOML, validation that names the step and field) and gate verdicts, on values
worked out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from modelbaton.controller.gates import (
    ArmMetrics,
    Metrics,
    ShadowChecks,
    Verdict,
    canary_gates,
    gate_alpha,
    overall,
    shadow_gates,
)
from modelbaton.controller.plan import Gates, load_plan, parse_duration, parse_plan
from modelbaton.errors import ConfigError
from modelbaton.stats.fixed_sample import wilson_interval
from modelbaton.stats.sequential import latency_histogram


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


PROM = "http://127.0.0.1:9090"
CHECK = {"name": "errors", "query": 'sum(errors{model_version="$version"})', "max_increase": 0.01}


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
        (
            plan(
                {"kind": "promote"}, gates={"prometheus": {"url": "prom:9090", "checks": [CHECK]}}
            ),
            "gates.prometheus.url: Value error, 'prom:9090' is not an http:// or https:// URL",
        ),
        (
            plan({"kind": "promote"}, gates={"prometheus": {"url": PROM, "checks": []}}),
            "gates.prometheus.checks: List should have at least 1 item",
        ),
        (
            plan(
                {"kind": "promote"},
                gates={"prometheus": {"url": PROM, "checks": [{**CHECK, "max_ratio": 2}]}},
            ),
            "check 'errors': give one of max_increase and max_ratio",
        ),
        (
            plan(
                {"kind": "promote"},
                gates={"prometheus": {"url": PROM, "checks": [{"name": "n", "query": "up"}]}},
            ),
            "check 'n': give one of max_increase and max_ratio",
        ),
        (
            plan({"kind": "promote"}, gates={"prometheus": {"url": PROM, "checks": [CHECK] * 2}}),
            "gates.prometheus.checks: Value error, check name 'errors' is used twice",
        ),
        (
            plan(
                {"kind": "promote"},
                gates={"prometheus": {"url": PROM, "checks": [CHECK], "timeout": "5x"}},
            ),
            "gates.prometheus.timeout: Value error, expected a duration",
        ),
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


def lognormal_histogram(n: int, median_ms: float, seed: int) -> dict[int, int]:
    rng = np.random.default_rng(seed)
    return latency_histogram(median_ms * np.exp(0.3 * rng.standard_normal(n)))


# Lots of data on both arms; the candidate is as good as the baseline on every measure.
BASE = ArmMetrics(
    completed=20_000,
    failed=100,
    reviewed_or_waiting=2_000,
    reviewed=2_000,
    reviewed_correct=1_980,
    latency_histogram=lognormal_histogram(18_000, 200.0, 1),
)
GOOD = ArmMetrics(
    completed=4_000,
    failed=20,
    reviewed_or_waiting=400,
    reviewed=400,
    reviewed_correct=396,
    latency_histogram=lognormal_histogram(3_600, 200.0, 2),
)
GATES = Gates(min_reviewed=10)


def test_canary_gates_pass_only_when_non_inferiority_is_shown() -> None:
    results = canary_gates(Metrics(baseline=BASE, candidate=GOOD), GATES, min_documents=20)
    assert verdicts(results) == {
        "documents": "pass",
        "failure rate": "pass",
        "stuck workflows": "pass",
        "p95 latency": "pass",
        "review share": "pass",
        "reviewed accuracy": "pass",
    }
    assert overall(results) is Verdict.PASS
    # The audit trail sees each interval, the level it was taken at and the tolerance.
    failure = results[1].line()
    assert failure.startswith("failure rate pass (candidate 20/4020 = 0.5%, baseline 100/20100")
    assert "at alpha 0.0125, tolerance +5.0%" in failure


def test_too_little_data_is_inconclusive_not_pass() -> None:
    few = ArmMetrics(completed=30, reviewed_or_waiting=3, latency_histogram={200: 30})
    results = canary_gates(Metrics(baseline=BASE, candidate=few), GATES, min_documents=20)
    assert verdicts(results) == {
        "documents": "pass",
        "failure rate": "inconclusive",  # 0 of 30: the interval still reaches past +5 %
        "stuck workflows": "pass",
        "p95 latency": "inconclusive",  # no upper bound on a p95 from 30 values
        "review share": "inconclusive",
        "reviewed accuracy": "inconclusive",  # no reviews: not judged, so not passed
    }
    assert overall(results) is Verdict.INCONCLUSIVE
    nothing = canary_gates(Metrics(), GATES, min_documents=20)
    assert {r.verdict for r in nothing} == {Verdict.INCONCLUSIVE, Verdict.PASS}  # stuck: 0
    assert verdicts(nothing)["failure rate"] == "inconclusive"
    assert "no data" in nothing[1].measured


def test_a_pipeline_that_marks_no_review_leaves_the_review_share_unjudged() -> None:
    """With plenty of data, the share still passes only where it was measured: a pipeline whose
    spec has no review marker gets inconclusive (a waiver passes it, marked), never pass."""
    unmarked = {"review_measured": False, "reviewed_or_waiting": 0}
    metrics = Metrics(
        baseline=BASE.model_copy(update=unmarked), candidate=GOOD.model_copy(update=unmarked)
    )
    (share,) = [r for r in canary_gates(metrics, GATES, 20) if r.gate == "review share"]
    assert share.verdict is Verdict.INCONCLUSIVE
    assert "not measured" in share.measured
    waived = Gates(min_reviewed=10, waive=["review_share"])
    (share,) = [r for r in canary_gates(metrics, waived, 20) if r.gate == "review share"]
    assert (share.verdict, share.waived) == (Verdict.PASS, True)
    # Older measures have no flag: measured, as they always were.
    assert ArmMetrics.model_validate({"completed": 1}).review_measured is None


def test_one_transient_failure_in_five_does_not_abort_but_five_of_five_do() -> None:
    one = ArmMetrics(completed=4, failed=1)
    assert verdicts(canary_gates(Metrics(baseline=BASE, candidate=one), GATES, 20))[
        "failure rate"
    ] == ("inconclusive")
    dead = ArmMetrics(failed=2, retrying=3)
    results = canary_gates(Metrics(baseline=BASE, candidate=dead), GATES, min_documents=20)
    assert verdicts(results)["failure rate"] == "fail"  # before min_documents: failing decides
    assert overall(results) is Verdict.FAIL


def test_canary_gates_fail_when_shown_worse_than_the_tolerance() -> None:
    bad = ArmMetrics(
        completed=1_000,
        failed=200,  # 16.7 % against 0.5 %
        stuck=1,
        reviewed_or_waiting=600,  # 50 % against 10 %
        reviewed=600,
        reviewed_correct=420,  # 70 % right against 99 %
        latency_histogram=lognormal_histogram(1_000, 600.0, 3),  # 3x the baseline, limit 2x
    )
    gates = GATES.model_copy(update={"max_p95_latency_ratio": 2.0})
    results = canary_gates(Metrics(baseline=BASE, candidate=bad), gates, min_documents=20)
    assert verdicts(results) == {
        "documents": "pass",
        "failure rate": "fail",
        "stuck workflows": "fail",
        "p95 latency": "fail",
        "review share": "fail",
        "reviewed accuracy": "fail",
    }


def test_a_small_but_real_difference_within_the_tolerance_stays_open_then_passes() -> None:
    # 3 % of failures against 1 %: worse, but by less than +5 %. With 300 documents the interval
    # still reaches past the tolerance; with 20,000 it lies inside it.
    base = ArmMetrics(completed=99_000, failed=1_000)
    small = ArmMetrics(completed=291, failed=9)
    gates = Gates(max_p95_latency_ratio=None, max_review_share_increase=None)
    gates = gates.model_copy(update={"max_accuracy_drop": None})
    result = canary_gates(Metrics(baseline=base, candidate=small), gates, 20)[1]
    assert result.verdict is Verdict.INCONCLUSIVE
    large = ArmMetrics(completed=19_400, failed=600)
    result = canary_gates(Metrics(baseline=base, candidate=large), gates, 20)[1]
    assert result.verdict is Verdict.PASS


def test_agreement_gate_compares_with_the_baseline_noise() -> None:
    gates = Gates(max_agreement_drop=0.05)
    base = BASE.model_copy(update={"compared": 2_000, "agreed": 1_900})  # noise: 95 %
    same = GOOD.model_copy(update={"compared": 2_000, "agreed": 1_900})
    wrong = GOOD.model_copy(update={"compared": 2_000, "agreed": 1_400})  # 70 %
    assert gate_alpha(gates) == pytest.approx(0.01)  # five gates on share alpha 0.05
    for cand, expected in ((same, "pass"), (wrong, "fail"), (GOOD, "inconclusive")):
        results = canary_gates(Metrics(baseline=base, candidate=cand), gates, 20)
        assert verdicts(results)["agreement"] == expected
    assert gate_alpha(Gates()) == pytest.approx(0.0125)  # agreement off by default: four


def test_waived_gate_is_marked_and_still_fails_on_evidence() -> None:
    gates = Gates(waive=("reviewed_accuracy", "p95_latency"))
    no_reviews = GOOD.model_copy(update={"reviewed": 0, "reviewed_correct": 0})
    results = canary_gates(Metrics(baseline=BASE, candidate=no_reviews), gates, 20)
    accuracy = next(r for r in results if r.gate == "reviewed accuracy")
    assert (accuracy.verdict, accuracy.waived) == (Verdict.PASS, True)
    assert accuracy.line().startswith("reviewed accuracy waived (inconclusive) (0 candidate")
    assert overall(results) is Verdict.PASS
    # A waived gate's "pass" is never a shown one: the p95 passes on evidence, not waived.
    latency = next(r for r in results if r.gate == "p95 latency")
    assert (latency.verdict, latency.waived) == (Verdict.PASS, False)
    slow = GOOD.model_copy(update={"latency_histogram": lognormal_histogram(3_600, 900.0, 4)})
    results = canary_gates(Metrics(baseline=BASE, candidate=slow), gates, 20)
    assert verdicts(results)["p95 latency"] == "fail"
    assert overall(results) is Verdict.FAIL


def test_no_gate_is_not_a_pass_and_min_documents_counts() -> None:
    assert overall([]) is Verdict.INCONCLUSIVE
    off = Gates(
        max_failure_rate_increase=None,
        max_stuck=None,
        max_p95_latency_ratio=None,
        max_review_share_increase=None,
        max_accuracy_drop=None,
    )
    results = canary_gates(Metrics(candidate=ArmMetrics(completed=3)), off, min_documents=20)
    assert verdicts(results) == {"documents": "inconclusive"}
    assert results[0].measured == "3 candidate documents, 20 needed"
    results = canary_gates(Metrics(candidate=ArmMetrics(completed=20)), off, min_documents=20)
    assert overall(results) is Verdict.PASS


def test_old_metrics_without_histograms_are_read_and_inconclusive() -> None:
    old = {"completed": 500, "p95_latency_ms": 210.0, "some_future_field": 1}
    cand = ArmMetrics.model_validate(old)
    assert cand.latency_histogram is None
    results = canary_gates(Metrics(baseline=BASE, candidate=cand), GATES, 20)
    assert verdicts(results)["p95 latency"] == "inconclusive"


def shadow(agreed: int, compared: int, minimum: float = 0.85) -> Metrics:
    low, _ = wilson_interval(agreed, compared)  # the shadow report's own READY rule
    return Metrics(
        shadow_compared=compared,
        shadow_ready=low >= minimum,
        shadow_summary="READY" if low >= minimum else "NOT READY",
        shadow_agreed=agreed,
        shadow_min_agreement=minimum,
        shadow_other_checks_ready=True,
    )


def test_shadow_gates() -> None:
    (r,) = shadow_gates(Metrics(shadow_compared=40), GATES, documents=50)
    assert (r.verdict, r.measured) == (Verdict.INCONCLUSIVE, "40 of 50 comparisons in")
    assert shadow_gates(shadow(98, 100), GATES, 100)[0].verdict is Verdict.PASS
    # 60 % agreement on 100 documents: shown below the minimum of 85 %.
    (r,) = shadow_gates(shadow(60, 100), GATES, 100)
    assert r.verdict is Verdict.FAIL
    assert "shown below 85.0%" in r.measured
    # The report's other checks failing (schema errors, say) is evidence too.
    other = shadow(98, 100).model_copy(
        update={"shadow_ready": False, "shadow_other_checks_ready": False}
    )
    assert shadow_gates(other, GATES, 100)[0].verdict is Verdict.FAIL
    # A measure from before these fields: NOT READY alone never fails.
    legacy = Metrics(shadow_compared=50, shadow_ready=False, shadow_summary="NOT READY")
    assert shadow_gates(legacy, GATES, 50)[0].verdict is Verdict.INCONCLUSIVE
    lax = GATES.model_copy(update={"require_shadow_ready": False})
    assert shadow_gates(legacy, lax, 50)[0].verdict is Verdict.PASS


def checked(ready: bool = False, **numbers: Any) -> Metrics:
    """A measure of 100 shadowed documents that all agreed, with the report's other checks as
    numbers (limits: no schema error, 1 % errors, 1.5x p95 latency); ``ready`` is the report's
    point-estimate verdict."""
    checks = ShadowChecks(
        calls=100, max_error_rate=0.01, max_schema_errors=0, max_p95_latency_ratio=1.5
    ).model_copy(update=numbers)
    return shadow(100, 100).model_copy(
        update={
            "shadow_ready": ready,
            "shadow_other_checks_ready": ready,
            "shadow_checks": checks,
        }
    )


def test_the_shadows_other_checks_fail_it_only_when_shown() -> None:
    """The report's checks besides agreement were point estimates: a shadow whose p95 latency
    happened to read 1.6x on a few calls was aborted. Now each fails the gate on evidence only,
    and NOT READY without it waits (inconclusive); the point-estimate READY still passes."""
    assert shadow_gates(checked(ready=True), GATES, 100)[0].verdict is Verdict.PASS
    # p95 latency 1.6x the baseline's on 20 calls each: over the limit, but not shown.
    few = checked(
        baseline_latency=latency_histogram([100.0] * 20),
        candidate_latency=latency_histogram([160.0] * 20),
    )
    (r,) = shadow_gates(few, GATES, 100)
    assert r.verdict is Verdict.INCONCLUSIVE, r.measured
    # The same measure from before the numbers were recorded failed, and still does on replay.
    legacy = few.model_copy(update={"shadow_checks": None})
    assert shadow_gates(legacy, GATES, 100)[0].verdict is Verdict.FAIL
    # Ten times slower on 400 calls each: shown.
    slow = checked(
        baseline_latency=latency_histogram([10.0] * 400),
        candidate_latency=latency_histogram([100.0] * 400),
    )
    (r,) = shadow_gates(slow, GATES, 100)
    assert r.verdict is Verdict.FAIL
    assert "candidate p95 latency at least" in r.measured
    # Five errors in 100 calls (limit 1 %): over it, not shown; 40 in 100: shown.
    assert shadow_gates(checked(candidate_errors=5), GATES, 100)[0].verdict is (
        Verdict.INCONCLUSIVE
    )
    (r,) = shadow_gates(checked(candidate_errors=40), GATES, 100)
    assert r.verdict is Verdict.FAIL
    assert "candidate error rate in [" in r.measured
    # A schema error is a fact, and the report's reviewed-accuracy finding stands as it is.
    assert shadow_gates(checked(schema_errors=1), GATES, 100)[0].verdict is Verdict.FAIL
    (r,) = shadow_gates(checked(accuracy_worse="less accurate on 40 reviews"), GATES, 100)
    assert (r.verdict, r.measured.endswith("less accurate on 40 reviews")) == (Verdict.FAIL, True)


def test_borderline_shadow_agreement_is_not_failed() -> None:
    """True agreement 0.92, minimum 0.85, 100 comparisons: the old gate turned NOT READY into
    FAIL whenever the Wilson lower bound fell below 0.85 (about 41 % of such candidates)."""
    probability_not_ready = 0.0
    for agreed in range(0, 101):
        metrics = shadow(agreed, 100)
        p = stats.binom.pmf(agreed, 100, 0.92)
        if not metrics.shadow_ready:
            probability_not_ready += p
        if agreed >= 80:  # P(X < 80) under Binomial(100, 0.92) is about 1e-4
            (r,) = shadow_gates(metrics, GATES, 100)
            assert r.verdict is not Verdict.FAIL, agreed
    assert probability_not_ready > 0.3  # the borderline is real: NOT READY is common
    assert stats.binom.cdf(79, 100, 0.92) < 0.001


def test_plan_alpha_and_waive_fields() -> None:
    base = {"candidate": "v3", "steps": [{"kind": "canary", "fraction": 0.1}]}
    plan = parse_plan({**base, "gates": {"alpha": 0.01, "waive": ["reviewed_accuracy"]}})
    assert (plan.gates.alpha, plan.gates.waive) == (0.01, ("reviewed_accuracy",))
    assert parse_plan(base).gates.alpha == 0.05
    with pytest.raises(ConfigError, match=r"gates.waive: .*cannot waive 'accuracy'"):
        parse_plan({**base, "gates": {"waive": ["accuracy"]}})
    with pytest.raises(ConfigError, match=r"gates\.alpha"):
        parse_plan({**base, "gates": {"alpha": 0.9}})
    with pytest.raises(ConfigError, match=r"gates\.alpha"):
        parse_plan({**base, "gates": {"alpha": 0}})
