"""The starter helper: assignment and search attributes from a rollout plan."""

from __future__ import annotations

import pytest

from modelbaton import (
    SEARCH_ATTRIBUTES,
    Arm,
    ModelRef,
    assign,
    start_canary,
    start_shadow,
    steady,
)
from modelbaton.contracts.rollout import BUCKETS, bucket


def test_steady_plan_assigns_the_baseline_pool() -> None:
    got = assign("inv-1", steady("invoice", "v1", 1), "invoices")
    assert got.model.model_version == "v1"
    assert got.model.output_schema_version == 1
    assert got.model.task_queue == "invoices-model-v1"
    assert got.model.arm is Arm.BASELINE
    assert got.shadow is None
    attrs = {p.key.name: p.value for p in got.search_attributes}
    assert attrs == {"ModelVersion": "v1", "OutputSchemaVersion": 1, "RolloutArm": "baseline"}
    assert {k.name for k in SEARCH_ATTRIBUTES} >= set(attrs)


def test_canary_follows_the_key_bucket() -> None:
    plan = start_canary(
        steady("invoice", "v1", 1), ModelRef(version="v2", output_schema_version=2), 0.3, "salt"
    )
    keys = [f"inv-{i}" for i in range(400)]
    for key in keys:
        got = assign(key, plan, "invoices")
        expected = bucket(key, "salt") < 0.3 * BUCKETS
        assert (got.model.model_version == "v2") is expected
        attrs = {p.key.name: p.value for p in got.search_attributes}
        assert attrs["RolloutId"] == "invoice-1"
        assert attrs["RolloutArm"] == ("candidate" if expected else "baseline")


def test_shadow_samples_keys_and_keeps_the_baseline() -> None:
    plan = start_shadow(
        steady("invoice", "v1", 1), ModelRef(version="v2", output_schema_version=2), 0.5, "s"
    )
    got = [assign(f"k{i}", plan, "q") for i in range(200)]
    assert all(g.model.model_version == "v1" for g in got)
    shadowed = [g for g in got if g.shadow is not None]
    assert 60 < len(shadowed) < 140
    assert all(g.shadow and g.shadow.candidate.task_queue == "q-model-v2" for g in shadowed)


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="business key"):
        assign("", steady("invoice", "v1", 1), "q")
