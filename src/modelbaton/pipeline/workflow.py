"""The pipeline's current workflow release (see ``releases/`` for every lifecycle stage)."""

from modelbaton.pipeline.releases.r5_assigned import DocumentClassificationWorkflow

__all__ = ["DocumentClassificationWorkflow"]
