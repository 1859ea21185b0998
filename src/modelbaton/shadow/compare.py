"""The comparison of one shadowed document: pure, computed from the arms' canonical answers.

A side that did not answer (an error, a timeout) leaves the agreement and distances empty and
its error in the row; the report counts those apart from disagreements.
"""

from __future__ import annotations

from typing import Any

from modelbaton.contracts.comparison import LabelAgreement
from modelbaton.pipeline.messages import ArmAnswer, ShadowRecordInput
from modelbaton.stats.fixed_sample import jensen_shannon

#: The classification pipeline's comparator, one of modelbaton's pluggable ones.
AGREEMENT = LabelAgreement(distance=jensen_shannon)


def _pair(a: ArmAnswer | None, b: ArmAnswer | None) -> tuple[bool | None, float | None]:
    """(labels agree, Jensen-Shannon distance) when both sides answered."""
    if a is None or b is None or a.result is None or b.result is None:
        return None, None
    compared = AGREEMENT.compare(a.result, b.result)
    return compared.agree, compared.distance


def comparison_row(inp: ShadowRecordInput) -> dict[str, Any]:
    """The ``shadow_comparisons`` row of one document under one rollout."""
    base, cand, noise = inp.baseline, inp.candidate, inp.noise
    agree, distance = _pair(base, cand)
    noise_agree, noise_distance = _pair(base, noise)
    base_classes = set(base.result.scores_by_class) if base.result else set()
    cand_classes = set(cand.result.scores_by_class) if cand.result else set()
    both = base.result is not None and cand.result is not None
    return {
        "rollout_id": inp.rollout_id,
        "document_id": inp.document_id,
        "workflow_id": inp.workflow_id,
        "run_id": inp.run_id,
        "baseline_version": base.model_version,
        "candidate_version": cand.model_version,
        "baseline_label": base.result.label if base.result else None,
        "candidate_label": cand.result.label if cand.result else None,
        "baseline_confidence": base.result.confidence if base.result else None,
        "candidate_confidence": cand.result.confidence if cand.result else None,
        "agree": agree,
        "js_distance": distance,
        "only_baseline_classes": sorted(base_classes - cand_classes) if both else [],
        "only_candidate_classes": sorted(cand_classes - base_classes) if both else [],
        "baseline_latency_ms": base.latency_ms,
        "candidate_latency_ms": cand.latency_ms,
        "baseline_error_type": base.error_type,
        "candidate_error_type": cand.error_type,
        "candidate_error": (cand.error or "")[:1000] or None,
        "noise_label": noise.result.label if noise and noise.result else None,
        "noise_agree": noise_agree,
        "noise_js_distance": noise_distance,
        "noise_error_type": noise.error_type if noise else None,
        "reviewed_label": inp.reviewed_label,
    }
