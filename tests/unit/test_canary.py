"""The canary split: accuracy at 10,000 keys, determinism, monotonicity, and plan changes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelbaton.contracts.rollout import (
    BUCKETS,
    Arm,
    ModelRef,
    RolloutPlan,
    RolloutRefused,
    RolloutStage,
    abort,
    bucket,
    promote,
    set_fraction,
    start_canary,
    takes_candidate,
)

V2 = ModelRef(version="v2", output_schema_version=2)
V3 = ModelRef(version="v3", output_schema_version=2)
STEADY = RolloutPlan(model_id="doc-classifier", baseline=V2)


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.2, 0.5])
def test_split_within_one_point_over_10000_keys(fraction: float) -> None:
    keys = [f"customer-{i}" for i in range(10_000)]
    share = sum(takes_candidate(k, "salt-a", fraction) for k in keys) / len(keys)
    assert abs(share - fraction) < 0.01, share


def test_bucket_is_a_keyed_blake2b_not_python_hash() -> None:
    # An independent computation of the documented function: BLAKE2b-64 keyed by the salt.
    digest = hashlib.blake2b(b"doc-1", digest_size=8, key=b"s").digest()
    assert bucket("doc-1", "s") == int.from_bytes(digest, "big") % BUCKETS


def test_fraction_edges() -> None:
    assert not any(takes_candidate(f"k{i}", "s", 0.0) for i in range(1000))
    assert all(takes_candidate(f"k{i}", "s", 1.0) for i in range(1000))


@given(key=st.text(min_size=1, max_size=40), salt=st.text(max_size=20))
def test_same_key_same_bucket(key: str, salt: str) -> None:
    assert bucket(key, salt) == bucket(key, salt)
    assert 0 <= bucket(key, salt) < BUCKETS


@given(
    key=st.text(min_size=1, max_size=40),
    low=st.floats(min_value=0.0, max_value=1.0),
    high=st.floats(min_value=0.0, max_value=1.0),
)
def test_raising_the_fraction_never_moves_a_key_back(key: str, low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    if takes_candidate(key, "salt", low):
        assert takes_candidate(key, "salt", high)


@given(key=st.text(min_size=1, max_size=40), fraction=st.floats(min_value=0.0, max_value=1.0))
def test_plan_assigns_deterministically(key: str, fraction: float) -> None:
    plan = start_canary(STEADY, V3, fraction, "salt")
    first = plan.assign(key, "q")
    assert first == plan.assign(key, "q")
    assert first.arm is (Arm.CANDIDATE if takes_candidate(key, "salt", fraction) else Arm.BASELINE)
    assert first.task_queue == f"q-model-{first.model_version}"
    assert first.rollout_id == plan.rollout_id


def test_steady_plan_assigns_the_baseline_and_no_rollout() -> None:
    a = STEADY.assign("k", "q")
    assert (a.model_version, a.arm, a.rollout_id, a.bucket) == ("v2", Arm.BASELINE, None, None)


def test_plan_lifecycle_and_refusals() -> None:
    canary = start_canary(STEADY, V3, 0.05, "s")
    assert (canary.stage, canary.rollout_id, canary.revision) == (
        RolloutStage.CANARY,
        "doc-classifier-1",
        1,
    )
    with pytest.raises(RolloutRefused, match="in progress"):
        start_canary(canary, V3, 0.1, "s")
    with pytest.raises(RolloutRefused, match=r"within \[0, 1\]"):
        set_fraction(canary, 1.5)
    raised = set_fraction(canary, 0.2)
    assert (raised.fraction, raised.revision) == (0.2, 2)
    promoted = promote(raised)
    assert (promoted.baseline, promoted.candidate, promoted.stage) == (
        V3,
        None,
        RolloutStage.STEADY,
    )
    with pytest.raises(RolloutRefused, match="nothing to promote"):
        promote(promoted)
    with pytest.raises(RolloutRefused, match="already the baseline"):
        start_canary(promoted, V3, 0.1, "s")
    again = start_canary(promoted, V2, 0.1, "t")
    assert again.rollout_id == "doc-classifier-2"
    aborted = abort(again)
    assert (aborted.baseline, aborted.candidate) == (V3, None)
    assert aborted.assign("k", "q").rollout_id is None
    with pytest.raises(RolloutRefused, match="nothing to abort"):
        abort(aborted)
    with pytest.raises(RolloutRefused, match="start one first"):
        set_fraction(aborted, 0.3)


def test_canary_check_sample_asks_the_baseline_beside_each_arm() -> None:
    """In a canary with a check sample, sampled documents of both arms get the baseline as their
    other model, recorded under the rollout id plus ":canary"; the sampled share is the sample."""
    canary = set_fraction(start_canary(STEADY, V3, 0.0, "s"), 0.5, check_sample=0.2)
    keys = [f"doc-{i}" for i in range(4000)]
    checked = {"candidate": 0, "baseline": 0}
    arms = {"candidate": 0, "baseline": 0}
    for key in keys:
        primary = canary.assign(key, "q")
        arms[primary.arm.value] += 1
        check = canary.shadow_for(key, "q")
        if check is None:
            continue
        checked[primary.arm.value] += 1
        assert check.rollout_id == "doc-classifier-1:canary"
        assert (check.candidate.model_version, check.candidate.task_queue) == ("v2", "q-model-v2")
        assert check.noise is None
    for arm in ("candidate", "baseline"):
        # 20 % of about 2000 keys per arm: mean 400, sd 18; 4 sd either side.
        assert abs(checked[arm] - 0.2 * arms[arm]) < 4 * (0.2 * 0.8 * arms[arm]) ** 0.5
    assert all(set_fraction(canary, 0.5).shadow_for(k, "q") is None for k in keys[:200])
    assert promote(canary).check_sample == 0.0
    with pytest.raises(RolloutRefused, match="check sample"):
        set_fraction(canary, 0.5, check_sample=1.5)
