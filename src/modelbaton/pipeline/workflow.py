"""The pipeline's current workflow release (see ``releases/`` for every lifecycle stage)."""

from modelbaton.pipeline.releases.r6_shadow import DocumentClassificationWorkflow

__all__ = ["DocumentClassificationWorkflow"]
