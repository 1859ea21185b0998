"""The pure decisions behind the controller's error handling and the rollback of a promotion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from modelbaton.contracts.rollout import (
    ModelRef,
    RolloutPlan,
    RolloutRefused,
    promote,
    start_canary,
)
from modelbaton.controller.plan import max_wait_of, parse_plan
from modelbaton.controller.workflow import failure_message
from modelbaton.rollout.messages import Promotion
from modelbaton.rollout.workflow import restored

V2 = ModelRef(version="v2", output_schema_version=2)
V3 = ModelRef(version="v3", output_schema_version=2)
STEADY = RolloutPlan(model_id="doc-classifier", baseline=V2)


def promoted() -> tuple[RolloutPlan, Promotion]:
    canary = start_canary(STEADY, V3, 0.5, "salt")
    after = promote(canary)
    at = datetime(2026, 12, 2, tzinfo=UTC)
    return after, Promotion(
        rollout_id=canary.rollout_id, promoted=V3, previous=V2, at=at, revision=after.revision
    )


def test_restoring_a_promotion_brings_the_previous_baseline_back() -> None:
    plan, promotion = promoted()
    back = restored(plan, promotion, V2)
    assert (back.baseline, back.candidate, back.ended, back.last_candidate) == (
        V2,
        None,
        "rolled-back",
        "v3",
    )
    assert back.revision == plan.revision + 1
    assert back.rollout_id == plan.rollout_id


def test_restoring_is_refused_without_a_promotion_or_for_another_one() -> None:
    plan, promotion = promoted()
    with pytest.raises(RolloutRefused, match="no promotion"):
        restored(plan, None, V2)
    with pytest.raises(RolloutRefused, match="replaced v2 with v3, not v3 with v3"):
        restored(plan, promotion, V3)
    in_progress = start_canary(STEADY, V3, 0.5, "salt")
    with pytest.raises(RolloutRefused, match="in progress"):
        restored(in_progress, promotion, V2)
    twice = restored(plan, promotion, V2)
    with pytest.raises(RolloutRefused, match="ended rolled-back"):
        restored(twice, promotion, V2)


def test_failure_message_is_the_root_cause_of_an_activity_failure() -> None:
    cause = ApplicationError("refused: no rollout in progress", type="RolloutError")
    err = ActivityError(
        "Activity task failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="controller_apply_step",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = cause
    assert failure_message(err) == "refused: no rollout in progress"


def test_a_drain_waits_for_a_person_only_when_told_to_wait() -> None:
    plan = parse_plan(
        {
            "candidate": "v3",
            "steps": [
                {"kind": "canary", "fraction": 0.1, "max_wait": 90},
                {"kind": "promote"},
                {"kind": "drain", "deadline": 30, "on_deadline": "wait"},
            ],
        }
    )
    canary, promote_step, drain = plan.steps
    assert max_wait_of(canary) == 90
    assert max_wait_of(promote_step) is None
    assert max_wait_of(drain) == 30
    assert max_wait_of(drain.model_copy(update={"on_deadline": "report"})) is None
