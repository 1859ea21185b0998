"""Release 2, patched: histories recorded before the patch keep the v1 path, new ones take v2.

Both paths live in one worker binary. The v2 path calls ``classify_document_v2`` with the
configured model, so moving from model v2 to v3 (same raw shape, one more class) is a catalog
change, not a code change. A model with another output schema needs its own activity and patch
(and so does a rollback to a v1-schema model: the article's scenario C).
"""

from __future__ import annotations

from temporalio import workflow

from modelbaton.pipeline.releases._base import DocumentClassificationBase

with workflow.unsafe.imports_passed_through():
    from modelbaton.contracts import NormalizedClassificationResult
    from modelbaton.pipeline.messages import (
        CLASSIFY_V1,
        CLASSIFY_V2,
        WORKFLOW_TYPE,
        ClassificationOutcome,
        ClassifyDocumentInput,
    )
    from modelbaton.pipeline.patches import PATCH_CLASSIFY_V2


#: New workflows take the v2 branch, which refuses a schema-1 model (measured).
SERVES_SCHEMAS: frozenset[int] = frozenset({2})


@workflow.defn(name=WORKFLOW_TYPE)
class DocumentClassificationWorkflow(DocumentClassificationBase):
    """Patched code: ``workflow.patched(PATCH_CLASSIFY_V2)`` chooses the path."""

    async def _classify(
        self, inp: ClassifyDocumentInput
    ) -> tuple[str, NormalizedClassificationResult]:
        config = self._legacy_config(inp)
        if workflow.patched(PATCH_CLASSIFY_V2):
            return "v2", await self._call_classifier(inp, CLASSIFY_V2, config)
        return "v1", await self._call_classifier(inp, CLASSIFY_V1, config)

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        return await self._run(inp)
