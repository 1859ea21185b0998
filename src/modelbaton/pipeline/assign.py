"""The starter's helper: the assignment a new workflow records, and the search attributes to start
it with, from the rollout plan. Pure: the plan comes from the caller (the rollout workflow's
``plan`` query, a file, or :func:`steady`), so starters, schedules and tests share one rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from modelbaton.contracts.rollout import ModelAssignment, ModelRef, RolloutPlan, ShadowAssignment
from modelbaton.pipeline import search_attributes as sa


@dataclass(frozen=True)
class Assigned:
    """What to start a workflow with: record ``model`` (and ``shadow``) in its input."""

    model: ModelAssignment
    shadow: ShadowAssignment | None
    search_attributes: TypedSearchAttributes


def steady(model_id: str, version: str, output_schema_version: int) -> RolloutPlan:
    """The plan of a model id before any rollout: one baseline serves everything."""
    return RolloutPlan(
        model_id=model_id,
        baseline=ModelRef(version=version, output_schema_version=output_schema_version),
    )


def search_attributes_for(assignment: ModelAssignment) -> TypedSearchAttributes:
    """Search attributes that let visibility split workflows by model version and arm."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.MODEL_VERSION, assignment.model_version),
        SearchAttributePair(sa.OUTPUT_SCHEMA_VERSION, assignment.output_schema_version),
        SearchAttributePair(sa.ROLLOUT_ARM, assignment.arm.value),
    ]
    if assignment.rollout_id:
        pairs.append(SearchAttributePair(sa.ROLLOUT_ID, assignment.rollout_id))
    return TypedSearchAttributes(pairs)


def assign(business_key: str, plan: RolloutPlan, task_queue: str) -> Assigned:
    """The assignment of the workflow for ``business_key`` under ``plan`` (canary bucketing on
    the key, so one key always lands in the same arm), its shadow calls if sampled, and its
    search attributes. ``task_queue`` is the pipeline's queue; pools are named from it."""
    if not business_key:
        raise ValueError("assign needs a non-empty business key")
    model = plan.assign(business_key, task_queue)
    return Assigned(
        model=model,
        shadow=plan.shadow_for(business_key, task_queue),
        search_attributes=search_attributes_for(model),
    )
