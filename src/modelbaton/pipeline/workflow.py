"""The pipeline's current workflow release (see ``releases/`` for every lifecycle stage)."""

from modelbaton.pipeline.releases.r2_patched import DocumentClassificationWorkflow

__all__ = ["DocumentClassificationWorkflow"]
