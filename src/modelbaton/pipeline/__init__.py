"""The reference pipeline, document classification, and the workflow-side helpers every pipeline
uses (the model call, assignment, pools; re-exported from :mod:`modelbaton`).

The package's public names, imported lazily (see :mod:`modelbaton._lazy`): importing the package, in
the workflow sandbox too, costs nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelbaton._lazy import lazy_exports

if TYPE_CHECKING:
    from modelbaton.pipeline.intake import Document, validate_text
    from modelbaton.pipeline.messages import (
        ClassificationOutcome,
        ReviewDecision,
        WorkflowState,
    )
    from modelbaton.pipeline.releases import source_of
    from modelbaton.pipeline.starter import (
        SubmitReport,
        legacy_workflow_input,
        start_document,
        submit_documents,
    )
    from modelbaton.pipeline.store import ResultsStore
    from modelbaton.pipeline.workflow import (
        DocumentClassificationWorkflow,
    )

_EXPORTS = {
    "Document": "modelbaton.pipeline.intake",
    "validate_text": "modelbaton.pipeline.intake",
    "ClassificationOutcome": "modelbaton.pipeline.messages",
    "ReviewDecision": "modelbaton.pipeline.messages",
    "WorkflowState": "modelbaton.pipeline.messages",
    "source_of": "modelbaton.pipeline.releases",
    "SubmitReport": "modelbaton.pipeline.starter",
    "legacy_workflow_input": "modelbaton.pipeline.starter",
    "start_document": "modelbaton.pipeline.starter",
    "submit_documents": "modelbaton.pipeline.starter",
    "ResultsStore": "modelbaton.pipeline.store",
    "DocumentClassificationWorkflow": "modelbaton.pipeline.workflow",
}

__all__ = [
    "ClassificationOutcome",
    "Document",
    "DocumentClassificationWorkflow",
    "ResultsStore",
    "ReviewDecision",
    "SubmitReport",
    "WorkflowState",
    "legacy_workflow_input",
    "source_of",
    "start_document",
    "submit_documents",
    "validate_text",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
