"""Decision quality of the canary gates: the old thresholds against the confidence sequences.

No server: numpy simulates each rollout's document stream (a 10 % canary, so nine baseline
documents arrive per candidate document), and at every poll (every ``--poll-every`` candidate
documents) the REAL gate functions decide on the arms' cumulative counts, as the controller
does: ``modelbaton.controller.gates.canary_gates`` and ``overall`` for the new gates, and the
previous version of the same functions (``bench/_old_gates.py``, kept verbatim) for the old ones.
A rollout ends at its first FAIL (abort) or PASS (promote; the bake is taken as reached with
``min_documents``); one still inconclusive after ``--horizon`` candidate documents pauses for a
person (counted as undecided, and as ``--horizon`` documents exposed).

Arms: 1 % failures, 10 % sent to review (all reviewed, 95 % of them right), latency lognormal
(median 200 ms, sigma 0.4), every candidate document and a tenth of the baseline's compared
with the other model (the baseline's with itself: 95 % agreement, its noise). Cases: A/A (the
candidate is the baseline), a candidate 10 pp less accurate (85 % agreement and 85 % right on
reviews), one with +5 pp failures, one with 1.5x latency. Plan tolerances: failures +2 pp, p95
1.25x, review share +5 pp, accuracy -5 pp, agreement -5 pp, alpha 0.05, min_documents 50;
reviewed accuracy is waived (reviews are the slow signal; it can still fail), so the live
signals decide. The old gates see the same plan (their p95 is read off the same histogram).

Prints, per case and gates, the abort, promote and undecided rates and the median and p90
candidate documents until the decision. Goal: new false abort (A/A) <= alpha and new false
promote <= 0.05 for every regression.

    uv run python bench/gates.py [--rollouts 2000] [--regression-rollouts 400] [--seed 17]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from modelbaton.controller.gates import ArmMetrics, Metrics, Verdict, canary_gates, overall
from modelbaton.controller.gates_v1 import canary_gates as old_canary_gates
from modelbaton.controller.gates_v1 import overall as old_overall
from modelbaton.controller.plan import Gates
from modelbaton.stats.sequential import BIN_RATIO, bin_edges, latency_histogram

PLAN = Gates(
    alpha=0.05,
    max_failure_rate_increase=0.02,
    max_p95_latency_ratio=1.25,
    max_review_share_increase=0.05,
    max_accuracy_drop=0.05,
    max_agreement_drop=0.05,
    min_reviewed=20,
    waive=("reviewed_accuracy",),
)
MIN_DOCUMENTS = 50
BASELINE_PER_CANDIDATE = 9  # a 10 % canary


@dataclass(frozen=True)
class Arm:
    failure: float = 0.01
    review: float = 0.10
    accuracy: float = 0.95
    agreement: float = 0.95
    compared: float = 1.0
    median_ms: float = 200.0
    sigma: float = 0.4
    latency_scale: float = 1.0


BASE = Arm(compared=0.1)
CANDIDATE = Arm()
CASES: dict[str, Arm] = {
    "A/A (identical)": CANDIDATE,
    "accuracy -10 pp": replace(CANDIDATE, accuracy=0.85, agreement=0.85),
    "failures +5 pp": replace(CANDIDATE, failure=0.06),
    "p95 latency 1.5x": replace(CANDIDATE, latency_scale=1.5),
}
_LOG_BIN = math.log(BIN_RATIO)


class Stream:
    """One arm's simulated documents, with cumulative counts read off at any prefix."""

    def __init__(self, rng: np.random.Generator, arm: Arm, n: int) -> None:
        failed = rng.random(n) < arm.failure
        review = ~failed & (rng.random(n) < arm.review)
        right = review & (rng.random(n) < arm.accuracy)
        compared = ~failed & (rng.random(n) < arm.compared)
        agreed = compared & (rng.random(n) < arm.agreement)
        ms = arm.latency_scale * np.exp(
            math.log(arm.median_ms) + arm.sigma * rng.standard_normal(n)
        )
        timed = ~failed & ~review  # the p95 is over completed documents no human held up
        bins = np.where(ms < 1.0, 0, (np.log(np.maximum(ms, 1.0)) / _LOG_BIN).astype(np.int64))
        self.cum = {
            name: np.concatenate(([0], np.cumsum(values)))
            for name, values in {
                "failed": failed,
                "review": review,
                "right": right,
                "compared": compared,
                "agreed": agreed,
            }.items()
        }
        self.ms, self.timed, self.bins = ms, timed, bins
        self.counts = np.zeros(int(bins.max()) + 2, dtype=np.int64)
        self.at = 0

    def metrics(self, n: int) -> ArmMetrics:
        chunk = slice(self.at, n)
        np.add.at(self.counts, self.bins[chunk][self.timed[chunk]], 1)
        self.at = n
        (nonzero,) = np.nonzero(self.counts)
        histogram = dict(zip(nonzero.tolist(), self.counts[nonzero].tolist(), strict=True))
        c = {name: int(values[n]) for name, values in self.cum.items()}
        return ArmMetrics(
            completed=n - c["failed"],
            failed=c["failed"],
            reviewed_or_waiting=c["review"],
            reviewed=c["review"],
            reviewed_correct=c["right"],
            compared=c["compared"],
            agreed=c["agreed"],
            latency_histogram=histogram,
            p95_latency_ms=_p95(histogram),
        )


def _p95(histogram: dict[int, int]) -> float | None:
    """The old gates' p95: the upper edge of the bin where 95 % of the values are reached."""
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= 0.95 * total:
            return bin_edges(index)[1]
    return None


@dataclass
class Outcome:
    verdict: Verdict = Verdict.INCONCLUSIVE
    documents: int = 0


def run(
    case: Arm, rollouts: int, horizon: int, poll_every: int, seed: int
) -> dict[str, list[Outcome]]:
    outcomes: dict[str, list[Outcome]] = {"old": [], "new": []}
    for i in range(rollouts):
        rng = np.random.default_rng([seed, i])
        cand = Stream(rng, case, horizon)
        base = Stream(rng, BASE, horizon * BASELINE_PER_CANDIDATE)
        if i == 0:  # the bench's vectorized binning is the module's own
            sample = cand.ms[:200][cand.timed[:200]].tolist()
            assert latency_histogram(sample) == dict(
                zip(*np.unique(cand.bins[:200][cand.timed[:200]], return_counts=True), strict=True)
            )
        old, new = Outcome(documents=horizon), Outcome(documents=horizon)
        for n in range(poll_every, horizon + 1, poll_every):
            metrics = Metrics(
                baseline=base.metrics(n * BASELINE_PER_CANDIDATE), candidate=cand.metrics(n)
            )
            for gates, result, judge in (
                (old_canary_gates, old, old_overall),
                (canary_gates, new, overall),
            ):
                if result.verdict is Verdict.INCONCLUSIVE:
                    verdict = judge(gates(metrics, PLAN, MIN_DOCUMENTS))
                    if verdict is not Verdict.INCONCLUSIVE:
                        result.verdict, result.documents = verdict, n
            if old.verdict is not Verdict.INCONCLUSIVE and new.verdict is not Verdict.INCONCLUSIVE:
                break
        outcomes["old"].append(old)
        outcomes["new"].append(new)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000, help="A/A rollouts")
    parser.add_argument("--regression-rollouts", type=int, default=400)
    parser.add_argument("--horizon", type=int, default=4000, help="candidate documents at most")
    parser.add_argument("--poll-every", type=int, default=20, help="candidate documents per poll")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"canary gates: {args.rollouts} A/A rollouts, {args.regression_rollouts} per regression, "
        f"a poll every {args.poll_every} candidate documents, at most {args.horizon}; "
        f"alpha {PLAN.alpha}"
    )
    print(
        f"{'case':<18} {'gates':<5} {'abort':>7} {'promote':>8} {'undecided':>10} "
        f"{'median docs':>12} {'p90 docs':>9}"
    )
    goals: list[str] = []
    for name, case in CASES.items():
        aa = case == CANDIDATE
        rollouts = args.rollouts if aa else args.regression_rollouts
        outcomes = run(case, rollouts, args.horizon, args.poll_every, args.seed)
        for gates, results in outcomes.items():
            verdicts = [o.verdict for o in results]
            docs = np.array([o.documents for o in results])
            abort = verdicts.count(Verdict.FAIL) / rollouts
            promote = verdicts.count(Verdict.PASS) / rollouts
            undecided = verdicts.count(Verdict.INCONCLUSIVE) / rollouts
            print(
                f"{name:<18} {gates:<5} {abort:>7.1%} {promote:>8.1%} {undecided:>10.1%} "
                f"{np.median(docs):>12.0f} {np.percentile(docs, 90):>9.0f}"
            )
            if gates == "new":
                rate, label = (abort, "false abort") if aa else (promote, "false promote")
                met = rate <= 0.05
                goals.append(f"{name}: {label} {rate:.1%} {'<=' if met else '>'} 5 %")
    print("goal (new gates): " + "; ".join(goals))
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
