"""Release 3, patch deprecated: only the v2 path remains; the marker is still written.

Deploy only once no running workflow lacks the marker (``baton patches`` says when).
"""

from __future__ import annotations

from temporalio import workflow

from modelbaton.pipeline.releases._base import DocumentClassificationBase

with workflow.unsafe.imports_passed_through():
    from modelbaton.contracts import NormalizedClassificationResult
    from modelbaton.pipeline.messages import (
        CLASSIFY_V2,
        WORKFLOW_TYPE,
        ClassificationOutcome,
        ClassifyDocumentInput,
    )
    from modelbaton.pipeline.patches import PATCH_CLASSIFY_V2


#: New workflows classify with schema-2 models only.
SERVES_SCHEMAS: frozenset[int] = frozenset({2})


@workflow.defn(name=WORKFLOW_TYPE)
class DocumentClassificationWorkflow(DocumentClassificationBase):
    """Deprecated patch: ``deprecate_patch`` keeps histories with and without markers replaying."""

    async def _classify(
        self, inp: ClassifyDocumentInput
    ) -> tuple[str, NormalizedClassificationResult]:
        workflow.deprecate_patch(PATCH_CLASSIFY_V2)
        config = self._legacy_config(inp)
        return "v2", await self._call_classifier(inp, CLASSIFY_V2, config)

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        return await self._run(inp)
