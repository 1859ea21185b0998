"""The gates as they were before the confidence sequences (issue 17), kept verbatim: point
estimates against thresholds at every poll, reviewed accuracy passing while fewer than
``min_reviewed`` reviews exist, and NOT READY failing the shadow step at once.

Two users: a controller run started before the new gates replays on these (the workflow takes
the new ones behind ``workflow.patched``), and ``bench/gates.py`` measures them as the "old"
baseline. Do not fix them: they are what ran."""

from __future__ import annotations

from modelbaton.controller.gates import GateResult, Metrics, Verdict
from modelbaton.controller.plan import Gates


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def canary_gates(metrics: Metrics, gates: Gates, min_documents: int) -> list[GateResult]:
    """The gates of a canary step."""
    base, cand = metrics.baseline, metrics.candidate
    results: list[GateResult] = []
    enough = cand.documents >= min_documents
    if gates.max_failure_rate_increase is not None:
        rate_c, rate_b = cand.failure_rate, base.failure_rate or 0.0
        measured = (
            f"candidate {_rate(rate_c)} of {cand.documents} failed or retrying, baseline "
            f"{_rate(base.failure_rate)}, limit +{gates.max_failure_rate_increase:.1%}"
        )
        if (
            rate_c is not None
            and rate_c - rate_b > gates.max_failure_rate_increase
            and (enough or cand.failed + cand.retrying >= min_documents // 2 + 1)
        ):
            # Enough failures alone decide: waiting for more documents only adds victims.
            verdict = Verdict.FAIL
        elif not enough:
            verdict = Verdict.INCONCLUSIVE
        else:
            verdict = Verdict.PASS
        results.append(GateResult(gate="failure rate", verdict=verdict, measured=measured))
    if gates.max_stuck is not None:
        verdict = Verdict.FAIL if cand.stuck > gates.max_stuck else Verdict.PASS
        measured = f"{cand.stuck} candidate workflows stuck, limit {gates.max_stuck}"
        results.append(GateResult(gate="stuck workflows", verdict=verdict, measured=measured))
    if gates.max_p95_latency_ratio is not None:
        if not enough or cand.p95_latency_ms is None or not base.p95_latency_ms:
            verdict, measured = Verdict.INCONCLUSIVE, "not enough completed documents"
        else:
            ratio = cand.p95_latency_ms / base.p95_latency_ms
            verdict = Verdict.FAIL if ratio > gates.max_p95_latency_ratio else Verdict.PASS
            measured = (
                f"p95 {cand.p95_latency_ms:.0f} ms against {base.p95_latency_ms:.0f} ms = "
                f"{ratio:.2f}x, limit {gates.max_p95_latency_ratio:.2f}x"
            )
        results.append(GateResult(gate="p95 latency", verdict=verdict, measured=measured))
    if gates.max_review_share_increase is not None:
        share_c, share_b = cand.review_share, base.review_share
        if not enough or share_c is None or share_b is None:
            verdict, measured = Verdict.INCONCLUSIVE, "not enough documents"
        else:
            over = share_c - share_b > gates.max_review_share_increase
            verdict = Verdict.FAIL if over else Verdict.PASS
            measured = (
                f"candidate {_rate(share_c)} sent to review, baseline {_rate(share_b)}, "
                f"limit +{gates.max_review_share_increase:.1%}"
            )
        results.append(GateResult(gate="review share", verdict=verdict, measured=measured))
    if gates.max_accuracy_drop is not None:
        acc_c, acc_b = cand.accuracy, base.accuracy
        if (
            cand.reviewed < gates.min_reviewed
            or base.reviewed < gates.min_reviewed
            or acc_c is None
            or acc_b is None
        ):
            # Reviews come slowly; their absence never holds a step back.
            verdict = Verdict.PASS
            measured = (
                f"{cand.reviewed} candidate and {base.reviewed} baseline reviews, "
                f"{gates.min_reviewed} each needed: not judged"
            )
        else:
            verdict = Verdict.FAIL if acc_b - acc_c > gates.max_accuracy_drop else Verdict.PASS
            measured = (
                f"accuracy on reviews: candidate {_rate(acc_c)} (n={cand.reviewed}), baseline "
                f"{_rate(acc_b)} (n={base.reviewed}), limit -{gates.max_accuracy_drop:.1%}"
            )
        results.append(GateResult(gate="reviewed accuracy", verdict=verdict, measured=measured))
    return results


def shadow_gates(metrics: Metrics, gates: Gates, documents: int) -> list[GateResult]:
    """The gates of a shadow step: enough comparisons, then the shadow report's verdict."""
    if metrics.shadow_compared < documents:
        return [
            GateResult(
                gate="shadow",
                verdict=Verdict.INCONCLUSIVE,
                measured=f"{metrics.shadow_compared} of {documents} comparisons in",
            )
        ]
    if not gates.require_shadow_ready:
        verdict = Verdict.PASS
    else:
        verdict = Verdict.PASS if metrics.shadow_ready else Verdict.FAIL
    return [GateResult(gate="shadow", verdict=verdict, measured=metrics.shadow_summary)]


def overall(results: list[GateResult]) -> Verdict:
    """FAIL if any gate failed, else INCONCLUSIVE if any is, else PASS."""
    verdicts = {r.verdict for r in results}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS
