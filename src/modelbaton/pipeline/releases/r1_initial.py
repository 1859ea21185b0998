"""Release 1, before the patch: every document is classified by a v1-schema model."""

from __future__ import annotations

from temporalio import workflow

from modelbaton.pipeline.releases._base import DocumentClassificationBase

with workflow.unsafe.imports_passed_through():
    from modelbaton.contracts import NormalizedClassificationResult
    from modelbaton.pipeline.messages import (
        CLASSIFY_V1,
        WORKFLOW_TYPE,
        ClassificationOutcome,
        ClassifyDocumentInput,
    )


#: New workflows classify with schema-1 models only.
SERVES_SCHEMAS: frozenset[int] = frozenset({1})


@workflow.defn(name=WORKFLOW_TYPE)
class DocumentClassificationWorkflow(DocumentClassificationBase):
    """Pre-patch code: only the v1 path exists."""

    async def _classify(
        self, inp: ClassifyDocumentInput
    ) -> tuple[str, NormalizedClassificationResult]:
        config = self._legacy_config(inp)
        return "v1", await self._call_classifier(inp, CLASSIFY_V1, config)

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        return await self._run(inp)
