"""The patch lifecycle verdicts, from counts alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelbaton.ops.patches import Advice, PatchCounts, advise
from modelbaton.pipeline.patches import PatchInfo

ACTIVE = PatchInfo("P", "W", "d")
DEPRECATED = PatchInfo("P", "W", "d", deprecated_since=datetime(2026, 11, 1, tzinfo=UTC))


def counts(**kw: int) -> PatchCounts:
    base = {
        "running_with_marker": 0,
        "running_pre_patch": 0,
        "running_ambiguous": 0,
        "closed_without_marker": 0,
        "recorded_before_deprecation": 0,
    }
    return PatchCounts(**(base | kw), retention=timedelta(days=3))  # type: ignore[arg-type]


def test_prepatch_workflows_running_keep_the_patch() -> None:
    advice, reason = advise(ACTIVE, counts(running_pre_patch=2, running_with_marker=5))
    assert advice is Advice.KEEP
    assert "2 running workflows took the pre-patch branch" in reason


def test_ambiguous_workflows_are_not_guessed() -> None:
    advice, reason = advise(ACTIVE, counts(running_ambiguous=1, running_with_marker=5))
    assert advice is Advice.KEEP
    assert "not reached the patch site" in reason


def test_all_running_have_the_marker_safe_to_deprecate() -> None:
    advice, reason = advise(ACTIVE, counts(running_with_marker=7))
    assert advice is Advice.SAFE_TO_DEPRECATE
    assert "7 carry it" in reason


def test_closed_prepatch_within_retention_is_flagged_when_deprecating() -> None:
    advice, reason = advise(ACTIVE, counts(closed_without_marker=4))
    assert advice is Advice.SAFE_TO_DEPRECATE
    assert "4 closed pre-patch workflows are within 3 days" in reason


def test_deprecated_but_older_workflows_still_visible_keep() -> None:
    advice, reason = advise(DEPRECATED, counts(recorded_before_deprecation=3))
    assert advice is Advice.DEPRECATED_KEEP
    assert "3 workflows recorded before the deprecation" in reason


def test_deprecated_and_everything_older_gone_safe_to_remove() -> None:
    advice, reason = advise(DEPRECATED, counts(running_with_marker=9))
    assert advice is Advice.SAFE_TO_REMOVE
    assert "left 3 days" in reason


def test_prepatch_running_blocks_even_a_deprecated_patch() -> None:
    assert advise(DEPRECATED, counts(running_pre_patch=1))[0] is Advice.KEEP


def test_closed_prepatch_within_retention_blocks_removal() -> None:
    advice, reason = advise(DEPRECATED, counts(closed_without_marker=1))
    assert advice is Advice.DEPRECATED_KEEP
    assert "cannot replay them" in reason
