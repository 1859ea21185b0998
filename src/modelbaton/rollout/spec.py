"""What the rollout operations, the controller and preflight need to know of a pipeline: its
workflow type, its input type, the output schemas its code serves, its workflow classes (for
replay), its contracts registry and its patches. Every pipeline gives one, the reference
classification pipeline too (:func:`reference_spec`); nothing downstream asks which one it is::

    PipelineSpec(
        workflow_type="InvoiceExtraction",
        input_type=InvoiceInput,            # a pydantic model with an ``assignment`` field
        schema_versions=ROUTE.schema_versions,
        workflows=("invoice_extraction.workflow:InvoiceWorkflow",),
        contracts=CONTRACTS,
    )

A project config gives the same through ``modelbaton.Project.spec()``: the input type is the run
method's, the schema versions are the registry's unless the config says which.

A rollback that starts a document again decodes the input of its first run as ``input_type``
and starts the same workflow type with the same workflow id, the input's ``assignment`` replaced
by the plan in force's (and its ``shadow``, if the type has one, by the plan's shadow calls).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from modelbaton.contracts.rollout import ModelAssignment, RolloutPlan
from modelbaton.contracts.schemas import ContractRegistry
from modelbaton.pipeline.patches import PatchInfo


@dataclass(frozen=True)
class ReviewMarker:
    """How a pipeline marks documents a person handles: a Keyword search attribute its workflow
    sets (the reference pipeline's ``ReviewState``). Set at all, the document went to a person
    (the review-share gate counts it, and its time is a person's, left out of latency); equal to
    ``waiting``, it waits for one now (a rollback keeps it rather than restart it)."""

    attribute: str
    waiting: str = "pending"

    def sent(self) -> str:
        """A visibility condition: the document went to a person."""
        return f"{self.attribute} IS NOT NULL"

    def not_sent(self) -> str:
        return f"{self.attribute} IS NULL"

    def waiting_now(self) -> str:
        """A visibility condition: the document waits for a person."""
        return f'{self.attribute} = "{self.waiting}"'

    def is_waiting(self, search_attributes: Mapping[str, Sequence[Any]]) -> bool:
        """Whether a described workflow's (untyped) search attributes say it waits now."""
        values = list(search_attributes.get(self.attribute) or [])
        return bool(values) and values[0] == self.waiting


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline as the rollout tools see it (see the module docstring)."""

    workflow_type: str
    #: The workflow's input type: a pydantic model with an ``assignment: ModelAssignment | None``
    #: field, and optionally ``shadow: ShadowAssignment | None``.
    input_type: type[BaseModel]
    #: The :class:`~modelbaton.contracts.schemas.ContractRegistry` of the pipeline's outputs.
    contracts: ContractRegistry[Any]
    #: Output schema versions the running workflow code can call; None: not said (any).
    schema_versions: frozenset[int] | None = None
    #: ``module:Class`` of each workflow class the workers run (the replay check of preflight).
    workflows: tuple[str, ...] = ()
    #: The patches preflight judges; None: none declared (preflight says n/a).
    patches: tuple[PatchInfo, ...] | None = None
    #: How the workflow marks documents a person handles; None: none goes to a person (the
    #: review-share gate is then not judged, and nothing is kept from a rollback for a person).
    review: ReviewMarker | None = None

    def waiting_now(self) -> str | None:
        """The visibility condition of a document waiting for a person now; None where the
        pipeline marks no such wait."""
        return self.review.waiting_now() if self.review is not None else None

    def reassigned(
        self, old: BaseModel, plan: RolloutPlan, task_queue: str, fallback_key: str
    ) -> tuple[BaseModel, ModelAssignment]:
        """``old`` (a first run's input) as the plan in force assigns it now: the same business
        key (the old assignment's, else ``fallback_key``), a new assignment and shadow calls."""
        previous = getattr(old, "assignment", None)
        key = (
            previous.key if isinstance(previous, ModelAssignment) and previous.key else fallback_key
        )
        assignment = plan.assign(key, task_queue)
        update: dict[str, Any] = {"assignment": assignment}
        if "shadow" in type(old).model_fields:
            update["shadow"] = plan.shadow_for(key, task_queue)
        return old.model_copy(update=update), assignment


def reference_spec(release: str | None = None) -> PipelineSpec:
    """The reference classification pipeline's spec, as its project config gives it; with
    ``release``, the schemas that release's code serves (rollback scenario C, ``--release``)."""
    from modelbaton.contracts.registry import CLASSIFICATION
    from modelbaton.pipeline.messages import WORKFLOW_TYPE, ClassifyDocumentInput
    from modelbaton.pipeline.patches import PATCHES
    from modelbaton.pipeline.releases import CURRENT_RELEASE, served_schemas
    from modelbaton.pipeline.search_attributes import REVIEW_STATE

    return PipelineSpec(
        workflow_type=WORKFLOW_TYPE,
        input_type=ClassifyDocumentInput,
        schema_versions=served_schemas(release or CURRENT_RELEASE),
        workflows=("modelbaton.pipeline.workflow:DocumentClassificationWorkflow",),
        contracts=CLASSIFICATION,
        patches=PATCHES,
        review=ReviewMarker(REVIEW_STATE.name, "pending"),
    )
