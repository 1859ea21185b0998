"""Gate verdicts from measured metrics: pure functions, so the controller workflow may call them
(deterministically, during replay too) and tests can check them on values worked out by hand.

Each canary gate is an anytime-valid confidence sequence (``modelbaton.stats.sequential``)
on how much worse the candidate arm is than the baseline arm running at the same time, judged
against the plan's tolerance:

- FAIL when the whole interval lies beyond the tolerance (the candidate is shown worse by more);
- PASS only when the whole interval lies within it (non-inferiority shown);
- INCONCLUSIVE otherwise, and always without data: no alarm yet is not a pass.

The plan's ``alpha`` is split equally among the canary gates that are on, and each gate's two
arms get half of its share, so the chance that any gate ever fails a candidate no worse than the
baseline is at most ``alpha`` however often the controller looks (and the same for passing one
worse by more than a tolerance). A gate named in the plan's ``waive`` may stay inconclusive: it
is then reported as waived, but it still fails on evidence. A step passes when every gate passes
(or is waived), at least ``min_documents`` candidate documents are in, and its bake time is over;
it fails as soon as any gate fails, so a bad candidate is stopped at the first measurement that
shows it. Without any gate nothing passes (:func:`overall` of no results is inconclusive).
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from modelbaton.controller.plan import Gates
from modelbaton.stats.sequential import bernoulli_cs, difference_cs, quantile_cs

_TOLERANT = ConfigDict(extra="ignore")
P95 = 0.95


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class ArmMetrics(BaseModel):
    """One arm of a rollout as the measure activity saw it (visibility and the results store)."""

    model_config = _TOLERANT

    completed: int = 0
    failed: int = 0
    running: int = 0
    retrying: int = 0
    stuck: int = 0
    reviewed_or_waiting: int = 0
    #: False when the pipeline marks no document as a person's (its spec has no review
    #: marker): the review share is then not measured. None from older measures: measured.
    review_measured: bool | None = None
    p95_latency_ms: float | None = None
    reviewed: int = 0
    reviewed_correct: int = 0
    # Counts per log-spaced latency bin (``sequential.latency_histogram``) of the documents the
    # p95 is taken over: what the latency confidence sequence needs. None from older measures.
    latency_histogram: dict[int, int] | None = None
    # Documents of this arm the other model also answered (the baseline arm: the baseline again,
    # its noise), and how many of them agreed. Zero until canary arms are compared.
    compared: int = 0
    agreed: int = 0
    # Of those compared documents, how many agreed on each field, where the pipeline's
    # comparator records fields (per-field agreement of an extraction). None otherwise.
    agreed_by_field: dict[str, int] | None = None

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def documents(self) -> int:
        """Documents that told something: finished, or visibly failing (retrying)."""
        return self.finished + self.retrying

    @property
    def failure_rate(self) -> float | None:
        return (self.failed + self.retrying) / self.documents if self.documents else None

    @property
    def review_share(self) -> float | None:
        total = self.finished + self.running
        return self.reviewed_or_waiting / total if total else None

    @property
    def accuracy(self) -> float | None:
        return self.reviewed_correct / self.reviewed if self.reviewed else None


class WebhookAnswer(BaseModel):
    """What the plan's webhook answered to one measurement (or why there is no answer)."""

    model_config = _TOLERANT

    verdict: Verdict
    reason: str = ""


class PrometheusAnswer(BaseModel):
    """One Prometheus check of the plan on one measurement: both arms' values and the verdict,
    or why there is none (inconclusive)."""

    model_config = _TOLERANT

    name: str
    verdict: Verdict
    reason: str = ""
    baseline: float | None = None
    candidate: float | None = None


class ShadowChecks(BaseModel):
    """The shadow report's checks besides agreement, as the numbers the shadow gate judges with
    confidence sequences, and the catalog's limits for them (the workflow cannot read the
    catalog). A check fails the shadow only when the evidence shows it failing."""

    model_config = _TOLERANT

    #: Documents shadowed, and how many of them the candidate answered with an error.
    calls: int = 0
    candidate_errors: int = 0
    max_error_rate: float = 0.0
    schema_errors: int = 0
    max_schema_errors: int = 0
    #: Latencies of the answers (``sequential.latency_histogram``) of each model's calls.
    baseline_latency: dict[int, int] | None = None
    candidate_latency: dict[int, int] | None = None
    max_p95_latency_ratio: float | None = None
    #: The report's reviewed-accuracy finding (its McNemar test), when it found the candidate
    #: less accurate; empty otherwise.
    accuracy_worse: str = ""


class Metrics(BaseModel):
    """What one measurement saw."""

    model_config = _TOLERANT

    measured_at: datetime | None = None
    baseline: ArmMetrics = Field(default_factory=ArmMetrics)
    candidate: ArmMetrics = Field(default_factory=ArmMetrics)
    shadow_compared: int = 0
    shadow_ready: bool | None = None
    shadow_summary: str = ""
    # For the shadow gate's confidence sequence: documents on which the two models agreed, the
    # gate's minimum agreement, and whether the report's other checks (errors, latency,
    # reviewed accuracy) are met. None from older measures: the gate then never fails.
    shadow_agreed: int | None = None
    shadow_min_agreement: float | None = None
    shadow_other_checks_ready: bool | None = None
    # The same checks as numbers, judged by the shadow gate with confidence sequences. None from
    # older measures: the gate then fails on ``shadow_other_checks_ready`` as it did.
    shadow_checks: ShadowChecks | None = None
    # The webhook gate's answer, when the plan has one; None from older measures.
    webhook: WebhookAnswer | None = None
    # The plan's Prometheus checks, one answer each; None without any (or from older measures).
    prometheus: list[PrometheusAnswer] | None = None


class GateResult(BaseModel):
    """One gate's verdict with the values (and interval) it was decided on."""

    model_config = _TOLERANT

    gate: str
    verdict: Verdict
    measured: str
    waived: bool = False  # the plan waived it: it passes although its interval is inconclusive

    @property
    def shown(self) -> str:
        """The verdict as a person reads it: a waived gate says so."""
        return "waived (inconclusive)" if self.waived else self.verdict.value

    def line(self) -> str:
        return f"{self.gate} {self.shown} ({self.measured})"


def judge(low: float, high: float, tolerance: float) -> Verdict:
    """A confidence interval on "how much worse the candidate is" against a tolerance."""
    if low > tolerance:
        return Verdict.FAIL
    if high <= tolerance:
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


def _pct(value: float) -> str:
    return f"{value:+.1%}" if math.isfinite(value) else ("+inf" if value > 0 else "-inf")


def _share(successes: int, n: int) -> str:
    return f"{successes}/{n}" + (f" = {successes / n:.1%}" if n else "")


def gate_alpha(gates: Gates) -> float:
    """Each canary gate's share of the plan's alpha: equal shares of the gates that are on."""
    on = [
        gates.max_failure_rate_increase,
        gates.max_p95_latency_ratio,
        gates.max_review_share_increase,
        gates.max_accuracy_drop,
        gates.max_agreement_drop,
    ]
    return gates.alpha / max(1, sum(1 for t in on if t is not None))


def _proportion_gate(
    gate: str,
    key: str,
    gates: Gates,
    alpha: float,
    worse: tuple[int, int, int, int],
    tolerance: float,
    what: str,
) -> GateResult:
    """``worse``: (candidate bad, candidate n, baseline bad, baseline n), where "bad" counts the
    outcome that makes an arm worse (a failure, a review, a wrong answer, a disagreement)."""
    bad_c, n_c, bad_b, n_b = worse
    if n_c == 0 or n_b == 0:
        verdict = Verdict.INCONCLUSIVE
        measured = f"no data: candidate {n_c}, baseline {n_b} {what}"
    else:
        low, high = difference_cs(bad_c, n_c, bad_b, n_b, alpha)
        verdict = judge(low, high, tolerance)
        measured = (
            f"candidate {_share(bad_c, n_c)}, baseline {_share(bad_b, n_b)} {what}; "
            f"difference in [{_pct(low)}, {_pct(high)}] at alpha {alpha:.3g}, "
            f"tolerance {_pct(tolerance)}"
        )
    return _waive(GateResult(gate=gate, verdict=verdict, measured=measured), key, gates)


def _waive(result: GateResult, key: str, gates: Gates) -> GateResult:
    if key in gates.waive and result.verdict is Verdict.INCONCLUSIVE:
        return result.model_copy(update={"verdict": Verdict.PASS, "waived": True})
    return result


def _latency_gate(base: ArmMetrics, cand: ArmMetrics, gates: Gates, alpha: float) -> GateResult:
    limit = gates.max_p95_latency_ratio
    assert limit is not None
    if not cand.latency_histogram or not base.latency_histogram:
        verdict, measured = Verdict.INCONCLUSIVE, "no completed documents to time in one arm"
    else:
        lo_c, hi_c, n_c = quantile_cs(cand.latency_histogram, P95, alpha / 2)
        lo_b, hi_b, n_b = quantile_cs(base.latency_histogram, P95, alpha / 2)
        low = lo_c / hi_b if math.isfinite(hi_b) and hi_b > 0 else 0.0
        high = hi_c / lo_b if lo_b > 0 else math.inf
        verdict = judge(low, high, limit)

        def ms(v: float) -> str:
            return f"{v:.0f}" if math.isfinite(v) else "inf"

        measured = (
            f"p95 candidate in [{ms(lo_c)}, {ms(hi_c)}] ms (n={n_c}), baseline in "
            f"[{ms(lo_b)}, {ms(hi_b)}] ms (n={n_b}); ratio in [{low:.2f}, "
            f"{high:.2f}]x at alpha {alpha:.3g}, limit {limit:.2f}x"
        )
    return _waive(
        GateResult(gate="p95 latency", verdict=verdict, measured=measured), "p95_latency", gates
    )


def canary_gates(metrics: Metrics, gates: Gates, min_documents: int) -> list[GateResult]:
    """The gates of a canary step (see the module docstring)."""
    base, cand = metrics.baseline, metrics.candidate
    alpha = gate_alpha(gates)
    enough = cand.documents >= min_documents
    results = [
        GateResult(
            gate="documents",
            verdict=Verdict.PASS if enough else Verdict.INCONCLUSIVE,
            measured=f"{cand.documents} candidate documents, {min_documents} needed",
        )
    ]
    if gates.max_failure_rate_increase is not None:
        results.append(
            _proportion_gate(
                "failure rate",
                "failure_rate",
                gates,
                alpha,
                (
                    cand.failed + cand.retrying,
                    cand.documents,
                    base.failed + base.retrying,
                    base.documents,
                ),
                gates.max_failure_rate_increase,
                "failed or retrying",
            )
        )
    if gates.max_stuck is not None:
        verdict = Verdict.FAIL if cand.stuck > gates.max_stuck else Verdict.PASS
        measured = f"{cand.stuck} candidate workflows stuck, limit {gates.max_stuck}"
        results.append(GateResult(gate="stuck workflows", verdict=verdict, measured=measured))
    if gates.max_p95_latency_ratio is not None:
        results.append(_latency_gate(base, cand, gates, alpha))
    if gates.max_review_share_increase is not None and False in (
        cand.review_measured,
        base.review_measured,
    ):
        unmeasured = GateResult(
            gate="review share",
            verdict=Verdict.INCONCLUSIVE,
            measured="the pipeline marks no document as sent to a person: not measured",
        )
        results.append(_waive(unmeasured, "review_share", gates))
    elif gates.max_review_share_increase is not None:
        results.append(
            _proportion_gate(
                "review share",
                "review_share",
                gates,
                alpha,
                (
                    cand.reviewed_or_waiting,
                    cand.finished + cand.running,
                    base.reviewed_or_waiting,
                    base.finished + base.running,
                ),
                gates.max_review_share_increase,
                "sent to review",
            )
        )
    if gates.max_accuracy_drop is not None:
        if cand.reviewed < gates.min_reviewed or base.reviewed < gates.min_reviewed:
            accuracy = GateResult(
                gate="reviewed accuracy",
                verdict=Verdict.INCONCLUSIVE,
                measured=(
                    f"{cand.reviewed} candidate and {base.reviewed} baseline reviews, "
                    f"{gates.min_reviewed} each needed: not judged yet"
                ),
            )
            results.append(_waive(accuracy, "reviewed_accuracy", gates))
        else:
            results.append(
                _proportion_gate(
                    "reviewed accuracy",
                    "reviewed_accuracy",
                    gates,
                    alpha,
                    (
                        cand.reviewed - cand.reviewed_correct,
                        cand.reviewed,
                        base.reviewed - base.reviewed_correct,
                        base.reviewed,
                    ),
                    gates.max_accuracy_drop,
                    "reviewed documents wrong",
                )
            )
    if gates.max_agreement_drop is not None:
        agreement = _proportion_gate(
            "agreement",
            "agreement",
            gates,
            alpha,
            (
                cand.compared - cand.agreed,
                cand.compared,
                base.compared - base.agreed,
                base.compared,
            ),
            gates.max_agreement_drop,
            "compared documents in disagreement (the baseline's: its noise)",
        )
        if cand.agreed_by_field and cand.compared:
            per_field = ", ".join(
                f"{name} {n / cand.compared:.0%}" for name, n in cand.agreed_by_field.items()
            )
            agreement = agreement.model_copy(
                update={"measured": f"{agreement.measured}; candidate per field: {per_field}"}
            )
        results.append(agreement)
    if gates.webhook is not None:
        results.append(webhook_gate(metrics))
    if gates.prometheus is not None:
        results += prometheus_gates(metrics, [c.name for c in gates.prometheus.checks])
    return results


def prometheus_gates(metrics: Metrics, names: list[str]) -> list[GateResult]:
    """Each Prometheus check of the plan as a gate; one without an answer is inconclusive."""
    answers = {a.name: a for a in metrics.prometheus or []}
    results: list[GateResult] = []
    for name in names:
        answer = answers.get(name)
        results.append(
            GateResult(
                gate=f"prometheus {name}",
                verdict=answer.verdict if answer else Verdict.INCONCLUSIVE,
                measured=(answer.reason or "-") if answer else "no answer yet",
            )
        )
    return results


def webhook_gate(metrics: Metrics) -> GateResult:
    """The plan's webhook as a gate: its answer decides; no answer is inconclusive, never a
    pass (the webhook is the team's approval or their own metric check: silence is not yes)."""
    answer = metrics.webhook
    if answer is None:
        return GateResult(gate="webhook", verdict=Verdict.INCONCLUSIVE, measured="no answer yet")
    return GateResult(gate="webhook", verdict=answer.verdict, measured=answer.reason or "-")


def shadow_gates(metrics: Metrics, gates: Gates, documents: int) -> list[GateResult]:
    """The gates of a shadow step: enough comparisons, then the shadow report's verdict.

    READY passes. NOT READY fails only on evidence: when a check of the report is shown failing
    (:func:`shadow_checks_shown`), or when the agreement's confidence sequence lies wholly below
    the minimum; otherwise (a bound or a point estimate merely beyond its limit) it stays
    inconclusive and the step waits for more comparisons, up to ``max_wait``. The plan's alpha
    is split equally between agreement, error rate and latency.

    A measure from before :class:`ShadowChecks` fails, as it did, whenever the report's other
    checks were not met (point estimates): the decisions of a history replay unchanged.
    """
    if metrics.shadow_compared < documents:
        return [
            GateResult(
                gate="shadow",
                verdict=Verdict.INCONCLUSIVE,
                measured=f"{metrics.shadow_compared} of {documents} comparisons in",
            )
        ]
    summary = metrics.shadow_summary
    if not gates.require_shadow_ready or metrics.shadow_ready:
        return [GateResult(gate="shadow", verdict=Verdict.PASS, measured=summary)]
    verdict = Verdict.INCONCLUSIVE
    agreed, minimum = metrics.shadow_agreed, metrics.shadow_min_agreement
    checks = metrics.shadow_checks
    alpha = gates.alpha if checks is None else gates.alpha / 3
    failing = shadow_checks_shown(checks, alpha) if checks is not None else []
    if failing:
        verdict = Verdict.FAIL
        summary += "; shown failing: " + "; ".join(failing)
    elif checks is None and metrics.shadow_other_checks_ready is False:
        verdict = Verdict.FAIL
    elif agreed is not None and minimum is not None and metrics.shadow_compared:
        low, high = bernoulli_cs(agreed, metrics.shadow_compared, alpha)
        shown = high < minimum
        verdict = Verdict.FAIL if shown else Verdict.INCONCLUSIVE
        summary += (
            f"; agreement in [{low:.1%}, {high:.1%}] at alpha {alpha:.3g} (anytime-valid): "
            + ("shown below" if shown else "not shown below")
            + f" {minimum:.1%}"
        )
    return [GateResult(gate="shadow", verdict=verdict, measured=summary)]


def shadow_checks_shown(checks: ShadowChecks, alpha: float) -> list[str]:
    """The report's checks the evidence shows failing, one reason each: schema errors beyond
    the limit (each one is a fact, not a sample); the candidate's error rate, its confidence
    sequence wholly above the limit; the p95 latency ratio, its interval (from each arm's
    quantile sequence at ``alpha / 2``) wholly above the limit; and the report's reviewed
    accuracy finding."""
    shown: list[str] = []
    if checks.schema_errors > checks.max_schema_errors:
        shown.append(
            f"{checks.schema_errors} schema errors (the gate allows {checks.max_schema_errors})"
        )
    if checks.calls:
        low, high = bernoulli_cs(checks.candidate_errors, checks.calls, alpha)
        if low > checks.max_error_rate:
            shown.append(
                f"candidate error rate in [{low:.1%}, {high:.1%}] ({checks.candidate_errors} of "
                f"{checks.calls}) at alpha {alpha:.3g}, above the gate's "
                f"{checks.max_error_rate:.1%}"
            )
    limit = checks.max_p95_latency_ratio
    if limit is not None and checks.baseline_latency and checks.candidate_latency:
        lo_c, _, n_c = quantile_cs(checks.candidate_latency, P95, alpha / 2)
        _, hi_b, n_b = quantile_cs(checks.baseline_latency, P95, alpha / 2)
        if math.isfinite(hi_b) and hi_b > 0 and lo_c / hi_b > limit:
            shown.append(
                f"candidate p95 latency at least {lo_c / hi_b:.2f}x the baseline's (n={n_c} "
                f"and {n_b}) at alpha {alpha:.3g}, above the gate's {limit:.2f}x"
            )
    if checks.accuracy_worse:
        shown.append(checks.accuracy_worse)
    return shown


def overall(results: list[GateResult]) -> Verdict:
    """FAIL if any gate failed, else INCONCLUSIVE if any is (or there is no gate), else PASS."""
    if not results:
        return Verdict.INCONCLUSIVE
    verdicts = {r.verdict for r in results}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS
