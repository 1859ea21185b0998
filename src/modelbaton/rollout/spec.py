"""What the rollout operations, the controller and preflight need to know of a pipeline that is
not the reference one: its workflow type, its input type, the output schemas its code serves,
its workflow classes (for replay) and its contracts registry.

:data:`REFERENCE` (every field empty but the type name) means the reference classification
pipeline, whose own code keeps deciding as before. A user's pipeline gives its own::

    PipelineSpec(
        workflow_type="InvoiceExtraction",
        input_type=InvoiceInput,            # a pydantic model with an ``assignment`` field
        schema_versions=ROUTE.schema_versions,
        workflows=("invoice_extraction.workflow:InvoiceWorkflow",),
        contracts=CONTRACTS,
    )

A rollback that starts a document again decodes the input of its first run as ``input_type``
and starts the same workflow type with the same workflow id, the input's ``assignment`` replaced
by the plan in force's (and its ``shadow``, if the type has one, by the plan's shadow calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from modelbaton.contracts.rollout import ModelAssignment, RolloutPlan
from modelbaton.pipeline.messages import WORKFLOW_TYPE


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline as the rollout tools see it (see the module docstring)."""

    workflow_type: str = WORKFLOW_TYPE
    #: The workflow's input type (a pydantic model with an ``assignment: ModelAssignment | None``
    #: field, and optionally ``shadow: ShadowAssignment | None``); None: the reference pipeline.
    input_type: type[BaseModel] | None = None
    #: Output schema versions the running workflow code can call; None: the reference releases.
    schema_versions: frozenset[int] | None = None
    #: ``module:Class`` of each workflow class the workers run (the replay check of preflight).
    workflows: tuple[str, ...] = ()
    #: The user's :class:`~modelbaton.contracts.schemas.ContractRegistry` (preflight's schema
    #: check); None: the reference registry.
    contracts: Any = None

    @property
    def is_reference(self) -> bool:
        return self.input_type is None

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


#: The reference classification pipeline.
REFERENCE = PipelineSpec()
