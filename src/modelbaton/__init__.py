"""modelbaton: safe model upgrades for AI pipelines that run as Temporal workflows.

The public face: what a user's pipeline imports. Everything in ``__all__`` is re-exported here and
imported lazily on first use, so ``import modelbaton`` stays cheap; workflow code may import the
names it needs inside the sandbox (they use only deterministic Temporal APIs and pydantic).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelbaton._lazy import lazy_exports

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    # contracts: raw schemas per version, normalizers, the user's canonical type
    "ContractRegistry": "modelbaton.contracts.schemas",
    "OutputSchema": "modelbaton.contracts.schemas",
    "DuplicateSchemaError": "modelbaton.contracts.schemas",
    # comparison of two canonical results
    "Comparator": "modelbaton.contracts.comparison",
    "Comparison": "modelbaton.contracts.comparison",
    "LabelAgreement": "modelbaton.contracts.comparison",
    "FieldMatch": "modelbaton.contracts.comparison",
    "AbsoluteError": "modelbaton.contracts.comparison",
    "AgreementSummary": "modelbaton.contracts.comparison",
    "summarize": "modelbaton.contracts.comparison",
    # rollout plan, assignment, canary bucketing (pure)
    "RolloutPlan": "modelbaton.contracts.rollout",
    "ModelRef": "modelbaton.contracts.rollout",
    "ModelAssignment": "modelbaton.contracts.rollout",
    "ShadowAssignment": "modelbaton.contracts.rollout",
    "Arm": "modelbaton.contracts.rollout",
    "RolloutStage": "modelbaton.contracts.rollout",
    "RolloutRefused": "modelbaton.contracts.rollout",
    "start_canary": "modelbaton.contracts.rollout",
    "start_shadow": "modelbaton.contracts.rollout",
    "set_fraction": "modelbaton.contracts.rollout",
    "promote": "modelbaton.contracts.rollout",
    "abort": "modelbaton.contracts.rollout",
    "pool_task_queue": "modelbaton.contracts.rollout",
    # the starter's helper
    "assign": "modelbaton.pipeline.assign",
    "Assigned": "modelbaton.pipeline.assign",
    "steady": "modelbaton.pipeline.assign",
    "search_attributes_for": "modelbaton.pipeline.assign",
    "read_plan": "modelbaton.rollout.plans",
    "SEARCH_ATTRIBUTES": "modelbaton.pipeline.search_attributes:ALL",
    # the model call in workflow code
    "ModelRoute": "modelbaton.pipeline.model_call",
    "ModelCall": "modelbaton.pipeline.model_call",
    "ModelTarget": "modelbaton.pipeline.model_call",
    "ShadowAnswer": "modelbaton.pipeline.model_call",
    # assignment at start without baton submit: a temporalio plugin (client, worker, Replayer)
    "AssignmentPlugin": "modelbaton.rollout.plugin",
    "AssignedWorkflow": "modelbaton.pipeline.start_assignment",
    "StartAssignment": "modelbaton.pipeline.start_assignment",
    "BusinessKeyError": "modelbaton.pipeline.start_assignment",
    "run_assignment": "modelbaton.pipeline.start_assignment",
    # pools
    "pool_worker": "modelbaton.pipeline.pool",
    "run_pool": "modelbaton.pipeline.pool",
    # rollouts and their controller on a user's pipeline
    "PipelineSpec": "modelbaton.rollout.spec",
    "RolloutControl": "modelbaton.controller.control",
    "ChangeBy": "modelbaton.rollout.messages",
    "ComparisonRecord": "modelbaton.controller.comparisons",
    "ComparisonActivities": "modelbaton.controller.comparisons",
    # the accuracy gate's ground truth (the reference pipeline's: its human reviews)
    "GroundTruth": "modelbaton.controller.truth",
    "ReviewedLabels": "modelbaton.controller.truth",
    # a throwaway local Temporal dev server
    "local_temporal": "modelbaton.stack.local",
    # the project config
    "Project": "modelbaton.project",
    "ProjectConfigError": "modelbaton.project",
    "load_project": "modelbaton.project",
    # where modelbaton keeps its state and finds the dev stack (MODELBATON_* variables)
    "Settings": "modelbaton.settings",
    # errors
    "ModelBatonError": "modelbaton.errors",
    "ConfigError": "modelbaton.errors",
    "ModelOutputError": "modelbaton.errors",
    "ModelEndpointError": "modelbaton.errors",
    "UnknownSchemaVersionError": "modelbaton.errors",
    "RolloutError": "modelbaton.errors",
}

__all__ = [
    "SEARCH_ATTRIBUTES",
    "AbsoluteError",
    "AgreementSummary",
    "Arm",
    "Assigned",
    "AssignedWorkflow",
    "AssignmentPlugin",
    "BusinessKeyError",
    "ChangeBy",
    "Comparator",
    "Comparison",
    "ComparisonActivities",
    "ComparisonRecord",
    "ConfigError",
    "ContractRegistry",
    "DuplicateSchemaError",
    "FieldMatch",
    "GroundTruth",
    "LabelAgreement",
    "ModelAssignment",
    "ModelBatonError",
    "ModelCall",
    "ModelEndpointError",
    "ModelOutputError",
    "ModelRef",
    "ModelRoute",
    "ModelTarget",
    "OutputSchema",
    "PipelineSpec",
    "Project",
    "ProjectConfigError",
    "ReviewedLabels",
    "RolloutControl",
    "RolloutError",
    "RolloutPlan",
    "RolloutRefused",
    "RolloutStage",
    "Settings",
    "ShadowAnswer",
    "ShadowAssignment",
    "StartAssignment",
    "UnknownSchemaVersionError",
    "__version__",
    "abort",
    "assign",
    "load_project",
    "local_temporal",
    "pool_task_queue",
    "pool_worker",
    "promote",
    "read_plan",
    "run_assignment",
    "run_pool",
    "search_attributes_for",
    "set_fraction",
    "start_canary",
    "start_shadow",
    "steady",
    "summarize",
]

if TYPE_CHECKING:
    from modelbaton.contracts.comparison import (
        AbsoluteError,
        AgreementSummary,
        Comparator,
        Comparison,
        FieldMatch,
        LabelAgreement,
        summarize,
    )
    from modelbaton.contracts.rollout import (
        Arm,
        ModelAssignment,
        ModelRef,
        RolloutPlan,
        RolloutRefused,
        RolloutStage,
        ShadowAssignment,
        abort,
        pool_task_queue,
        promote,
        set_fraction,
        start_canary,
        start_shadow,
    )
    from modelbaton.contracts.schemas import ContractRegistry, DuplicateSchemaError, OutputSchema
    from modelbaton.controller.comparisons import ComparisonActivities, ComparisonRecord
    from modelbaton.controller.control import RolloutControl
    from modelbaton.controller.truth import GroundTruth, ReviewedLabels
    from modelbaton.errors import (
        ConfigError,
        ModelBatonError,
        ModelEndpointError,
        ModelOutputError,
        RolloutError,
        UnknownSchemaVersionError,
    )
    from modelbaton.pipeline.assign import Assigned, assign, search_attributes_for, steady
    from modelbaton.pipeline.model_call import ModelCall, ModelRoute, ModelTarget, ShadowAnswer
    from modelbaton.pipeline.pool import pool_worker, run_pool
    from modelbaton.pipeline.search_attributes import ALL as SEARCH_ATTRIBUTES
    from modelbaton.pipeline.start_assignment import (
        AssignedWorkflow,
        BusinessKeyError,
        StartAssignment,
        run_assignment,
    )
    from modelbaton.project import Project, ProjectConfigError, load_project
    from modelbaton.rollout.messages import ChangeBy
    from modelbaton.rollout.plans import read_plan
    from modelbaton.rollout.plugin import AssignmentPlugin
    from modelbaton.rollout.spec import PipelineSpec
    from modelbaton.settings import Settings
    from modelbaton.stack.local import local_temporal

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
