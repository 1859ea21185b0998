"""Release 4, patch removed: the v2 path is the only code.

Deploy only once every workflow recorded before the deprecation has left retention, since
opening a closed workflow replays it (``baton patches`` says when).
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


#: New workflows classify with schema-2 models only: a schema-1 model has no path (scenario C).
SERVES_SCHEMAS: frozenset[int] = frozenset({2})


@workflow.defn(name=WORKFLOW_TYPE)
class DocumentClassificationWorkflow(DocumentClassificationBase):
    """Complete: no patch call left."""

    async def _classify(
        self, inp: ClassifyDocumentInput
    ) -> tuple[str, NormalizedClassificationResult]:
        config = self._legacy_config(inp)
        return "v2", await self._call_classifier(inp, CLASSIFY_V2, config)

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        return await self._run(inp)
