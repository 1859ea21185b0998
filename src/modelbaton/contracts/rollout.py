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
    """``steady``: only the baseline serves; ``shadow``: the baseline serves every document and
    the candidate also answers a sample, for comparison only; ``canary``: a fraction of documents
    is served by the candidate."""

    STEADY = "steady"
    SHADOW = "shadow"
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


#: Salt suffix of the second hash that picks the shadowed documents whose baseline is called twice.
NOISE_SALT = ":noise"
#: Suffix of the rollout id under which the canary's comparisons are recorded, apart from the
#: shadow stage's (so the shadow report of a rollout never mixes the two).
CHECK_SUFFIX = ":canary"
#: Salt suffix of the hash that picks the canary documents the baseline also answers.
CHECK_SALT = ":check"
#: How long a shadow call may take, retries included, unless the rollout says otherwise.
DEFAULT_SHADOW_BUDGET_SECONDS = 60.0


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


class ShadowAssignment(BaseModel):
    """The comparison calls of a shadowed document, recorded in its workflow input.

    ``candidate`` answers on the candidate's pool; ``noise`` (on a sample of the sample) calls the
    baseline a second time, so that the report can tell a model change from non-determinism.
    Neither answer is ever used by the document: the workflow does not wait for them.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    rollout_id: str = Field(min_length=1)
    candidate: ModelAssignment
    noise: ModelAssignment | None = None
    #: Bound of each shadow call, retries included: the rollout's choice, fixed at its start.
    budget_seconds: float = Field(default=DEFAULT_SHADOW_BUDGET_SECONDS, gt=0)


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
    #: Shadow stage: share of business keys the candidate also answers, and the share of those
    #: whose baseline is called a second time (the noise baseline).
    sample: float = 0.0
    noise_sample: float = 0.0
    shadow_budget_seconds: float = DEFAULT_SHADOW_BUDGET_SECONDS
    #: Canary stage: share of each arm's business keys on which the baseline also answers, off
    #: the primary path as a shadow does: beside the candidate on candidate documents (their
    #: agreement), and a second time on baseline documents (the noise it is judged against).
    check_sample: float = 0.0
    #: How the last rollout ended ("promoted" or "aborted"; None while one runs or before any),
    #: and its candidate, so that a rollback after an abort still knows whom it concerned.
    ended: str | None = None
    last_candidate: str | None = None

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
            rollout_id=self.rollout_id if self.stage is not RolloutStage.STEADY else None,
            plan_revision=self.revision,
            key=key,
            bucket=b,
        )

    def shadow_for(self, key: str, base_task_queue: str) -> ShadowAssignment | None:
        """The shadow calls of the document with business key ``key``, if it is sampled: in the
        shadow stage the candidate beside the baseline; in a canary with a ``check_sample`` the
        baseline beside whichever model the document runs on."""
        if self.candidate is None or not self.rollout_id:
            return None
        if self.stage is RolloutStage.CANARY and self.check_sample > 0.0:
            return self._check_for(key, base_task_queue)
        if self.stage is not RolloutStage.SHADOW:
            return None
        b = bucket(key, self.salt)
        if b >= threshold(self.sample):
            return None

        def on(ref: ModelRef, arm: Arm) -> ModelAssignment:
            return ModelAssignment(
                model_id=self.model_id,
                model_version=ref.version,
                output_schema_version=ref.output_schema_version,
                task_queue=pool_task_queue(base_task_queue, ref.version),
                arm=arm,
                rollout_id=self.rollout_id,
                plan_revision=self.revision,
                key=key,
                bucket=b,
            )

        noisy = takes_candidate(key, self.salt + NOISE_SALT, self.noise_sample)
        return ShadowAssignment(
            rollout_id=self.rollout_id,
            candidate=on(self.candidate, Arm.CANDIDATE),
            noise=on(self.baseline, Arm.BASELINE) if noisy else None,
            budget_seconds=self.shadow_budget_seconds,
        )

    def _check_for(self, key: str, base_task_queue: str) -> ShadowAssignment | None:
        if not takes_candidate(key, self.salt + CHECK_SALT, self.check_sample):
            return None
        primary = self.assign(key, base_task_queue)
        other = ModelAssignment(
            model_id=self.model_id,
            model_version=self.baseline.version,
            output_schema_version=self.baseline.output_schema_version,
            task_queue=pool_task_queue(base_task_queue, self.baseline.version),
            arm=Arm.BASELINE,
            rollout_id=self.rollout_id,
            plan_revision=self.revision,
            key=key,
            bucket=primary.bucket,
        )
        return ShadowAssignment(
            rollout_id=f"{self.rollout_id}{CHECK_SUFFIX}",
            candidate=other,
            budget_seconds=self.shadow_budget_seconds,
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


def _check_sample(check_sample: float) -> None:
    if not 0.0 <= check_sample <= 1.0:
        raise RolloutRefused(f"check sample must be within [0, 1], got {check_sample}")


def _new_rollout(plan: RolloutPlan, candidate: ModelRef, salt: str) -> dict[str, object]:
    if plan.stage is not RolloutStage.STEADY or plan.candidate is not None:
        current = plan.candidate.version if plan.candidate else "?"
        raise RolloutRefused(
            f"rollout {plan.rollout_id} of {current} is in progress; promote or abort it first"
        )
    if candidate.version == plan.baseline.version:
        raise RolloutRefused(f"candidate {candidate.version} is already the baseline")
    serial = plan.serial + 1
    return {
        "candidate": candidate,
        "ended": None,
        "last_candidate": None,
        "salt": salt,
        "rollout_id": f"{plan.model_id}-{serial}",
        "serial": serial,
        "revision": plan.revision + 1,
        "sample": 0.0,
        "noise_sample": 0.0,
        "check_sample": 0.0,
        "fraction": 0.0,
    }


def start_canary(
    plan: RolloutPlan, candidate: ModelRef, fraction: float, salt: str, check_sample: float = 0.0
) -> RolloutPlan:
    """A new rollout of ``candidate`` at ``fraction``; refused while another is in progress.
    ``check_sample``: see :attr:`RolloutPlan.check_sample`."""
    _check_fraction(fraction)
    _check_sample(check_sample)
    update = _new_rollout(plan, candidate, salt)
    return plan.model_copy(
        update=update
        | {"fraction": fraction, "stage": RolloutStage.CANARY, "check_sample": check_sample}
    )


def start_shadow(
    plan: RolloutPlan,
    candidate: ModelRef,
    sample: float,
    salt: str,
    *,
    noise_sample: float = 0.0,
    budget_seconds: float = DEFAULT_SHADOW_BUDGET_SECONDS,
) -> RolloutPlan:
    """A new rollout whose candidate only shadows ``sample`` of the documents."""
    if not 0.0 < sample <= 1.0:
        raise RolloutRefused(f"shadow sample must be within (0, 1], got {sample}")
    if not 0.0 <= noise_sample <= 1.0:
        raise RolloutRefused(f"noise sample must be within [0, 1], got {noise_sample}")
    if not budget_seconds > 0:
        raise RolloutRefused(f"shadow budget must be positive, got {budget_seconds} s")
    update = _new_rollout(plan, candidate, salt)
    return plan.model_copy(
        update=update
        | {
            "stage": RolloutStage.SHADOW,
            "sample": sample,
            "noise_sample": noise_sample,
            "shadow_budget_seconds": budget_seconds,
        }
    )


def set_fraction(plan: RolloutPlan, fraction: float, check_sample: float = 0.0) -> RolloutPlan:
    """The same rollout with another candidate fraction; from the shadow stage this starts the
    canary (and ends the shadowing). ``check_sample`` of each arm's documents are also answered by
    the baseline (see :attr:`RolloutPlan.check_sample`)."""
    _check_fraction(fraction)
    _check_sample(check_sample)
    if plan.stage is RolloutStage.STEADY or plan.candidate is None:
        raise RolloutRefused(f"no rollout in progress for {plan.model_id}; start one first")
    return plan.model_copy(
        update={
            "fraction": fraction,
            "stage": RolloutStage.CANARY,
            "sample": 0.0,
            "noise_sample": 0.0,
            "check_sample": check_sample,
            "revision": plan.revision + 1,
        }
    )


def promote(plan: RolloutPlan) -> RolloutPlan:
    """The candidate becomes the baseline for every new document; the rollout ends."""
    if plan.stage is RolloutStage.STEADY or plan.candidate is None:
        raise RolloutRefused(f"no rollout in progress for {plan.model_id}; nothing to promote")
    return plan.model_copy(
        update={
            "baseline": plan.candidate,
            "ended": "promoted",
            "last_candidate": plan.candidate.version,
            "candidate": None,
            "fraction": 0.0,
            "sample": 0.0,
            "noise_sample": 0.0,
            "check_sample": 0.0,
            "stage": RolloutStage.STEADY,
            "revision": plan.revision + 1,
        }
    )


def abort(plan: RolloutPlan) -> RolloutPlan:
    """Every new document goes to the baseline again; the rollout ends."""
    if plan.stage is RolloutStage.STEADY or plan.candidate is None:
        raise RolloutRefused(f"no rollout in progress for {plan.model_id}; nothing to abort")
    return plan.model_copy(
        update={
            "ended": "aborted",
            "last_candidate": plan.candidate.version,
            "candidate": None,
            "fraction": 0.0,
            "sample": 0.0,
            "noise_sample": 0.0,
            "check_sample": 0.0,
            "stage": RolloutStage.STEADY,
            "revision": plan.revision + 1,
        }
    )
