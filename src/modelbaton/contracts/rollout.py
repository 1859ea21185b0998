"""The rollout's pure core: the plan, the assignment a document records, and canary bucketing.

No I/O and no Temporal: the rollout workflow, the starter and the tests all call the same
functions, and the workflow may call them during replay because they are deterministic.

Canary: a document's business key and the rollout's salt go through BLAKE2b into one of
:data:`BUCKETS` buckets; buckets below ``fraction * BUCKETS`` take the candidate. Raising the
fraction only ever moves keys from baseline to candidate, and one key always lands in the same arm
under one salt. Python's ``hash()`` is salted per process, so it must never be used here.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

BUCKETS = 10_000


class Arm(StrEnum):
    """Which side of a rollout a document runs on."""

    BASELINE = "baseline"
    CANDIDATE = "candidate"


class RolloutStage(StrEnum):
    """``steady``: only the baseline serves; ``canary``: a fraction goes to the candidate."""

    STEADY = "steady"
    CANARY = "canary"


def bucket(key: str, salt: str) -> int:
    """The stable bucket in ``[0, BUCKETS)`` of ``key`` under ``salt``."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def threshold(fraction: float) -> int:
    """Number of buckets that take the candidate at ``fraction`` (monotonic in ``fraction``)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    return round(fraction * BUCKETS)


def takes_candidate(key: str, salt: str, fraction: float) -> bool:
    """Whether ``key`` runs on the candidate at ``fraction``."""
    return bucket(key, salt) < threshold(fraction)


def pool_task_queue(base: str, version: str) -> str:
    """The task queue of a model version's worker pool, named from the pipeline's queue."""
    return f"{base}-model-{version}"


class ModelAssignment(BaseModel):
    """What a document runs on, recorded in its workflow input: identity, never configuration.

    Endpoints, timeouts and tokens are resolved from the catalog by ``(model_id, model_version)``
    when the classify activity runs, so a model server that moves strands nothing in flight.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    model_id: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    output_schema_version: int = Field(ge=1)
    task_queue: str = Field(min_length=1, description="The model version's pool queue")
    arm: Arm = Arm.BASELINE
    rollout_id: str | None = None
    plan_revision: int = 0
    key: str | None = Field(default=None, description="The business key the canary hashed")
    bucket: int | None = None


class ModelRef(BaseModel):
    """A model version's identity as the rollout holds it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: str = Field(min_length=1)
    output_schema_version: int = Field(ge=1)


class RolloutPlan(BaseModel):
    """Who runs what for one model id; every change bumps ``revision``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model_id: str = Field(min_length=1)
    baseline: ModelRef
    candidate: ModelRef | None = None
    fraction: float = 0.0
    salt: str = ""
    stage: RolloutStage = RolloutStage.STEADY
    rollout_id: str | None = None
    revision: int = 0
    #: How many rollouts this model id has had; the next rollout id is derived from it.
    serial: int = 0

    def assign(self, key: str, base_task_queue: str) -> ModelAssignment:
        """The assignment of the document with business key ``key``, decided once at start."""
        b: int | None = None
        target, arm = self.baseline, Arm.BASELINE
        if self.stage is RolloutStage.CANARY and self.candidate is not None:
            b = bucket(key, self.salt)
            if b < threshold(self.fraction):
                target, arm = self.candidate, Arm.CANDIDATE
        return ModelAssignment(
            model_id=self.model_id,
            model_version=target.version,
            output_schema_version=target.output_schema_version,
            task_queue=pool_task_queue(base_task_queue, target.version),
            arm=arm,
            # Between rollouts nothing is being compared, so documents belong to none.
            rollout_id=self.rollout_id if self.stage is RolloutStage.CANARY else None,
            plan_revision=self.revision,
            key=key,
            bucket=b,
        )

    @property
    def versions(self) -> list[str]:
        """The versions that need a polling pool under this plan."""
        return [self.baseline.version] + ([self.candidate.version] if self.candidate else [])


class AuditEntry(BaseModel):
    """One change of a rollout: who, when, why, and the plan it produced."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    at: datetime
    actor: str
    action: str
    reason: str = ""
    revision: int
    detail: str = ""


class RolloutRefused(ValueError):
    """A rollout change that the current plan does not allow; the message says why."""


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise RolloutRefused(f"fraction must be within [0, 1], got {fraction}")


def start_canary(plan: RolloutPlan, candidate: ModelRef, fraction: float, salt: str) -> RolloutPlan:
    """A new rollout of ``candidate`` at ``fraction``; refused while another is in progress."""
    _check_fraction(fraction)
    if plan.stage is not RolloutStage.STEADY or plan.candidate is not None:
        current = plan.candidate.version if plan.candidate else "?"
        raise RolloutRefused(
            f"rollout {plan.rollout_id} of {current} is in progress; promote or abort it first"
        )
    if candidate.version == plan.baseline.version:
        raise RolloutRefused(f"candidate {candidate.version} is already the baseline")
    serial = plan.serial + 1
    return plan.model_copy(
        update={
            "candidate": candidate,
            "fraction": fraction,
            "salt": salt,
            "stage": RolloutStage.CANARY,
            "rollout_id": f"{plan.model_id}-{serial}",
            "serial": serial,
            "revision": plan.revision + 1,
        }
    )


def set_fraction(plan: RolloutPlan, fraction: float) -> RolloutPlan:
    """The same rollout with another candidate fraction."""
    _check_fraction(fraction)
    if plan.stage is not RolloutStage.CANARY:
        raise RolloutRefused(f"no rollout in progress for {plan.model_id}; start one first")
    return plan.model_copy(update={"fraction": fraction, "revision": plan.revision + 1})


def promote(plan: RolloutPlan) -> RolloutPlan:
    """The candidate becomes the baseline for every new document; the rollout ends."""
    if plan.stage is not RolloutStage.CANARY or plan.candidate is None:
        raise RolloutRefused(f"no rollout in progress for {plan.model_id}; nothing to promote")
    return plan.model_copy(
        update={
            "baseline": plan.candidate,
            "candidate": None,
            "fraction": 0.0,
            "stage": RolloutStage.STEADY,
            "revision": plan.revision + 1,
        }
    )


def abort(plan: RolloutPlan) -> RolloutPlan:
    """Every new document goes to the baseline again; the rollout ends."""
    if plan.stage is not RolloutStage.CANARY or plan.candidate is None:
        raise RolloutRefused(f"no rollout in progress for {plan.model_id}; nothing to abort")
    return plan.model_copy(
        update={
            "candidate": None,
            "fraction": 0.0,
            "stage": RolloutStage.STEADY,
            "revision": plan.revision + 1,
        }
    )
