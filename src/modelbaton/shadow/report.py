"""``baton shadow report``: what a rollout's shadow comparisons say, and whether it may go on.

Every figure comes from the ``shadow_comparisons`` rows of one rollout:

- the confidence difference (candidate minus baseline) on documents both answered;
- agreement of the two arms on documents both answered (the pipeline's comparator decides what
  agreeing is: the same label, every field matching), with a Wilson 95 % interval, and how many
  more documents the interval needs to reach the target width;
- agreement per field, where the comparator records fields (an extraction's);
- for a classification: the confusion between baseline and candidate labels, the distance
  between their score distributions, and the classes only one side knows;
- the candidate's errors, schema errors (malformed output, an unknown schema) apart;
- latency per arm (p50, p95), measured by the workflow the same way for both;
- on documents a human reviewed, each arm's accuracy and McNemar's exact test of the difference;
- the noise baseline: the baseline against itself, called twice on a sample, so that a team can
  tell a model change from non-determinism.

The verdict compares these with the catalog's ``[shadow_gate]`` thresholds: READY or NOT READY,
with every reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelbaton.models.catalog import ShadowGate
from modelbaton.shadow.store import ShadowComparison
from modelbaton.stats.fixed_sample import documents_for_width, mcnemar_exact, wilson_interval

#: Error types that mean the candidate's output did not fit its declared schema.
SCHEMA_ERRORS = frozenset({"ModelOutputError", "UnknownSchemaVersionError"})


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson 95 % interval."""

    successes: int
    n: int

    @property
    def value(self) -> float:
        return self.successes / self.n

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.n)

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "successes": self.successes,
            "n": self.n,
            "rate": self.value,
            "low": low,
            "high": high,
        }


def _percentiles(values: Sequence[float]) -> dict[str, float] | None:
    import numpy as np  # imported here: numpy costs every process that imports this

    if not values:
        return None
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return {"n": len(values), "p50": float(p50), "p95": float(p95)}


@dataclass
class ShadowReport:
    """The figures of one rollout's shadow and the verdict on them."""

    rollout_id: str
    gate: ShadowGate
    shadowed: int = 0
    baseline_versions: list[str] = field(default_factory=list)
    candidate_versions: list[str] = field(default_factory=list)
    agreement: Rate | None = None
    #: Per field, where the comparator records fields: agreement on that field.
    by_field: dict[str, Rate] = field(default_factory=dict)
    more_documents_for_width: int | None = None
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    distance: dict[str, float] | None = None
    confidence_delta: dict[str, float] | None = None
    only_baseline_classes: dict[str, int] = field(default_factory=dict)
    only_candidate_classes: dict[str, int] = field(default_factory=dict)
    candidate_errors: dict[str, int] = field(default_factory=dict)
    baseline_errors: int = 0
    latency_ms: dict[str, dict[str, float] | None] = field(default_factory=dict)
    reviewed: dict[str, Any] | None = None
    noise: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def schema_errors(self) -> int:
        return sum(n for kind, n in self.candidate_errors.items() if kind in SCHEMA_ERRORS)

    @property
    def candidate_error_count(self) -> int:
        return sum(self.candidate_errors.values())

    @property
    def ready(self) -> bool:
        return not self.reasons

    def ready_under(self, gate: ShadowGate) -> bool:
        """Whether this report would be READY against another ``gate`` (no second build)."""
        return not _reasons(self, gate)

    @property
    def verdict(self) -> str:
        return "READY" if self.ready else "NOT READY"

    def summary(self) -> str:
        """One line for an audit trail."""
        if self.agreement is None:
            head = f"{self.shadowed} shadowed, none compared"
        else:
            low, high = self.agreement.interval
            head = (
                f"agreement {self.agreement.value:.1%} [{low:.1%}, {high:.1%}] "
                f"over {self.agreement.n} documents"
            )
        tail = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return f"shadow verdict {self.verdict} ({head}){tail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rollout_id": self.rollout_id,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "shadowed": self.shadowed,
            "baseline_versions": self.baseline_versions,
            "candidate_versions": self.candidate_versions,
            "agreement": self.agreement.as_dict() if self.agreement else None,
            "agreement_by_field": {k: v.as_dict() for k, v in self.by_field.items()},
            "target_width": self.gate.target_width,
            "more_documents_for_width": self.more_documents_for_width,
            "confusion": self.confusion,
            "js_distance": self.distance,
            "confidence_delta": self.confidence_delta,
            "only_baseline_classes": self.only_baseline_classes,
            "only_candidate_classes": self.only_candidate_classes,
            "candidate_errors": self.candidate_errors,
            "schema_errors": self.schema_errors,
            "baseline_errors": self.baseline_errors,
            "latency_ms": self.latency_ms,
            "reviewed": self.reviewed,
            "noise": self.noise,
            "gate": self.gate.model_dump(),
        }


def build_report(
    rollout_id: str, rows: Sequence[ShadowComparison], gate: ShadowGate
) -> ShadowReport:
    """The report of ``rows`` (one rollout's comparisons) against ``gate``."""
    import numpy as np  # imported here: numpy costs every process that imports this

    report = ShadowReport(rollout_id=rollout_id, gate=gate, shadowed=len(rows))
    report.baseline_versions = sorted({r.baseline_version for r in rows})
    report.candidate_versions = sorted({r.candidate_version for r in rows})
    compared = [r for r in rows if r.agree is not None]
    if compared:
        agreed = sum(1 for r in compared if r.agree)
        report.agreement = Rate(agreed, len(compared))
        report.more_documents_for_width = documents_for_width(
            agreed, len(compared), gate.target_width
        )
        fields: dict[str, list[bool]] = {}
        for r in compared:
            for name, ok in (r.fields or {}).items():
                fields.setdefault(name, []).append(bool(ok))
        report.by_field = {k: Rate(sum(v), len(v)) for k, v in sorted(fields.items())}
        confusion: dict[str, Counter[str]] = {}
        for r in compared:
            if r.baseline_label is None and r.candidate_label is None:
                continue  # a comparator without labels (an extraction's)
            confusion.setdefault(str(r.baseline_label), Counter())[str(r.candidate_label)] += 1
        report.confusion = {b: dict(sorted(c.items())) for b, c in sorted(confusion.items())}
        distances = np.asarray([r.js_distance for r in compared if r.js_distance is not None])
        if distances.size:
            p50, p90 = np.percentile(distances, [50, 90])
            report.distance = {
                "mean": float(distances.mean()),
                "p50": float(p50),
                "p90": float(p90),
                "max": float(distances.max()),
            }
        deltas = np.asarray(
            [
                r.candidate_confidence - r.baseline_confidence
                for r in compared
                if r.candidate_confidence is not None and r.baseline_confidence is not None
            ]
        )
        if deltas.size:
            report.confidence_delta = {
                "mean": float(deltas.mean()),
                "p50": float(np.percentile(deltas, 50)),
                "mean_abs": float(np.abs(deltas).mean()),
            }
        report.only_baseline_classes = dict(
            Counter(c for r in compared for c in r.only_baseline_classes)
        )
        report.only_candidate_classes = dict(
            Counter(c for r in compared for c in r.only_candidate_classes)
        )
    report.candidate_errors = dict(
        Counter(r.candidate_error_type for r in rows if r.candidate_error_type)
    )
    report.baseline_errors = sum(1 for r in rows if r.baseline_error_type)
    report.latency_ms = {arm: _percentiles(ms) for arm, ms in answer_latencies(rows).items()}
    report.reviewed = _reviewed(compared)
    report.noise = _noise(rows)
    report.reasons = _reasons(report, gate)
    return report


def answer_latencies(rows: Sequence[ShadowComparison]) -> dict[str, list[float]]:
    """Each model's call latencies, of its answers only: an error or a timeout is counted as
    one, not timed."""
    return {
        "baseline": [
            r.baseline_latency_ms
            for r in rows
            if r.baseline_latency_ms is not None and not r.baseline_error_type
        ],
        "candidate": [
            r.candidate_latency_ms
            for r in rows
            if r.candidate_latency_ms is not None and not r.candidate_error_type
        ],
    }


def less_accurate(report: ShadowReport, gate: ShadowGate) -> str:
    """Why the reviewed documents show the candidate less accurate (McNemar's test at the
    gate's ``accuracy_alpha``), or empty when they do not."""
    reviewed = report.reviewed
    worse = reviewed and reviewed["only_baseline_right"] > reviewed["only_candidate_right"]
    if not (reviewed and worse and reviewed["mcnemar_p"] < gate.accuracy_alpha):
        return ""
    return (
        f"on {reviewed['n']} reviewed documents the candidate is less accurate "
        f"({reviewed['candidate_accuracy']['rate']:.1%} against "
        f"{reviewed['baseline_accuracy']['rate']:.1%}, McNemar p = "
        f"{reviewed['mcnemar_p']:.3g})"
    )


def _reviewed(compared: Sequence[ShadowComparison]) -> dict[str, Any] | None:
    reviewed = [r for r in compared if r.reviewed_label]
    if not reviewed:
        return None
    base_right = [r.baseline_label == r.reviewed_label for r in reviewed]
    cand_right = [r.candidate_label == r.reviewed_label for r in reviewed]
    only_base = sum(1 for b, c in zip(base_right, cand_right, strict=True) if b and not c)
    only_cand = sum(1 for b, c in zip(base_right, cand_right, strict=True) if c and not b)
    return {
        "n": len(reviewed),
        "baseline_accuracy": Rate(sum(base_right), len(reviewed)).as_dict(),
        "candidate_accuracy": Rate(sum(cand_right), len(reviewed)).as_dict(),
        "only_baseline_right": only_base,
        "only_candidate_right": only_cand,
        "mcnemar_p": mcnemar_exact(only_base, only_cand),
    }


def _noise(rows: Sequence[ShadowComparison]) -> dict[str, Any] | None:
    noisy = [r for r in rows if r.noise_agree is not None]
    if not noisy:
        return None
    distances = [r.noise_js_distance for r in noisy if r.noise_js_distance is not None]
    return {
        "agreement": Rate(sum(1 for r in noisy if r.noise_agree), len(noisy)).as_dict(),
        "js_distance_max": max(distances) if distances else None,
        "errors": sum(1 for r in rows if r.noise_error_type),
    }


def _reasons(report: ShadowReport, gate: ShadowGate) -> list[str]:
    reasons: list[str] = []
    n = report.agreement.n if report.agreement else 0
    if n < gate.min_documents:
        reasons.append(f"{n} documents compared, the gate needs {gate.min_documents}")
    if report.agreement is not None:
        low, _ = report.agreement.interval
        if low < gate.min_agreement:
            reasons.append(
                f"agreement lower bound {low:.1%} is below the gate's {gate.min_agreement:.1%}"
            )
    if report.schema_errors > gate.max_schema_errors:
        reasons.append(
            f"{report.schema_errors} schema errors (the gate allows {gate.max_schema_errors})"
        )
    if report.shadowed:
        rate = report.candidate_error_count / report.shadowed
        if rate > gate.max_error_rate:
            reasons.append(
                f"candidate error rate {rate:.1%} ({report.candidate_error_count} of "
                f"{report.shadowed}) is above the gate's {gate.max_error_rate:.1%}"
            )
    base, cand = report.latency_ms.get("baseline"), report.latency_ms.get("candidate")
    if base and cand and base["p95"] > 0:
        ratio = cand["p95"] / base["p95"]
        if ratio > gate.max_p95_latency_ratio:
            reasons.append(
                f"candidate p95 latency is {ratio:.2f}x the baseline's "
                f"(the gate allows {gate.max_p95_latency_ratio:.2f}x)"
            )
    worse = less_accurate(report, gate)
    if worse:
        reasons.append(worse)
    return reasons
