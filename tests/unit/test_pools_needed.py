"""Which pools a submit needs, from the workers' release and the plan (a pure rule)."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelbaton.pipeline.releases as releases_pkg
from modelbaton.contracts.rollout import ModelRef, RolloutPlan, RolloutStage
from modelbaton.pipeline.releases import RELEASES
from modelbaton.rollout.pools import POOL_RELEASES, SHADOW_RELEASES, PoolsNeeded, pools_needed

V2 = ModelRef(version="v2", output_schema_version=2)
V3 = ModelRef(version="v3", output_schema_version=2)
STEADY = RolloutPlan(model_id="m", baseline=V2)
CANARY = RolloutPlan(
    model_id="m", baseline=V2, candidate=V3, stage=RolloutStage.CANARY, rollout_id="r"
)
SHADOW = RolloutPlan(
    model_id="m", baseline=V2, candidate=V3, stage=RolloutStage.SHADOW, rollout_id="r"
)


@pytest.mark.parametrize("release", ["initial", "patched", "deprecated", "complete", "restored"])
@pytest.mark.parametrize("plan", [STEADY, CANARY, SHADOW])
def test_code_without_pools_needs_none(release: str, plan: RolloutPlan) -> None:
    assert pools_needed(plan, release) == PoolsNeeded()


@pytest.mark.parametrize(
    ("plan", "release", "required", "shadow_only"),
    [
        (STEADY, "shadow", ("v2",), ()),
        (CANARY, "shadow", ("v2", "v3"), ()),
        (CANARY, "assigned", ("v2", "v3"), ()),
        (SHADOW, "shadow", ("v2",), ("v3",)),
        (SHADOW, "assigned", ("v2",), ()),  # that code makes no shadow calls
        (SHADOW, None, ("v2",), ("v3",)),  # unknown code: assume the newest
        (CANARY, None, ("v2", "v3"), ()),
    ],
)
def test_primary_path_requires_shadow_only_warns(
    plan: RolloutPlan, release: str | None, required: tuple[str, ...], shadow_only: tuple[str, ...]
) -> None:
    assert pools_needed(plan, release) == PoolsNeeded(required, shadow_only)


def test_tables_match_the_release_modules() -> None:
    """Read from each release's source, independently of the tables: who schedules classify on
    an assignment's pool queue, and who makes shadow calls."""
    package = Path(releases_pkg.__file__).parents[2]  # the modelbaton package
    for name in RELEASES:
        source = (package / releases_pkg.source_of(name)).read_text()
        # Calls, not definitions: every frozen release carries its own copy of the helpers.
        assert ("self._classify_assigned(" in source) == (name in POOL_RELEASES), name
        assert ("self._classify_shadowed(" in source) == (name in SHADOW_RELEASES), name
