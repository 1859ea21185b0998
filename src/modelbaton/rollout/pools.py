"""Which model pools a submit needs: decided from the workflow code the workers run and the plan.

Pure functions, so the rule is tested without a server. Only releases that classify through a
model assignment send work to a pool's task queue (``assigned`` and later, minus ``restored``,
which branches from ``complete``); the pre-patch and patched releases classify on the workflow
worker's own queue and need no pool at all. Of the versions a plan names, the primary path
(the baseline, and the candidate during a canary) needs a live pool; a shadow candidate does
not: the shadow records its own errors and never touches the primary path, intake included.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelbaton.contracts.rollout import RolloutPlan, RolloutStage

#: Releases whose workflows classify on the assigned model's pool queue.
POOL_RELEASES = frozenset({"assigned", "shadow"})
#: Releases whose workflows also make the shadow calls of a shadow stage.
SHADOW_RELEASES = frozenset({"shadow"})


def reads_assignments(release: str) -> bool:
    """Whether ``release`` starts from a model assignment; the others read the model's whole
    configuration from the input (``deployment``), as the pre-patch release recorded it."""
    return release in POOL_RELEASES


@dataclass(frozen=True)
class PoolsNeeded:
    """The pools a submit needs: ``required`` must be live, ``shadow_only`` only warns."""

    required: tuple[str, ...] = ()
    shadow_only: tuple[str, ...] = ()


def pools_needed(plan: RolloutPlan, release: str | None) -> PoolsNeeded:
    """What new documents under ``plan`` need when the workers run ``release``.

    ``release=None`` (the workers' code is not known, e.g. workers on another machine) counts
    as code that uses pools, shadow calls included: the check then errs towards refusing.
    """
    if release is not None and release not in POOL_RELEASES:
        return PoolsNeeded()
    required = [plan.baseline.version]
    shadow: list[str] = []
    candidate = plan.candidate.version if plan.candidate else None
    if candidate is not None and candidate not in required:
        if plan.stage is RolloutStage.SHADOW:
            if release is None or release in SHADOW_RELEASES:
                shadow.append(candidate)
        else:
            required.append(candidate)
    return PoolsNeeded(required=tuple(required), shadow_only=tuple(shadow))
