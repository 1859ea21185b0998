"""Rollouts: the durable rollout workflow and the operations that read and change it."""

from modelbaton.rollout.messages import ROLLOUT_WORKFLOW_TYPE, rollout_workflow_id
from modelbaton.rollout.workflow import RolloutWorkflow

__all__ = ["ROLLOUT_WORKFLOW_TYPE", "RolloutWorkflow", "rollout_workflow_id"]
