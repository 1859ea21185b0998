"""Release 5, assigned: the input records a model assignment; classify runs on its pool queue.

``workflow.patched(PATCH_MODEL_ASSIGNMENT)`` guards the new path, and only inputs that carry an
assignment reach it, so every history recorded by the earlier releases replays unchanged:
pre-patch histories keep ``classify_document_v1`` on the workflow's own queue, histories with the
``PATCH_CLASSIFY_V2`` marker keep ``classify_document_v2`` with the configuration they recorded.
On the new path the classify activity is chosen by the assigned model's output schema, so moving
between models of any registered schema (a rollout, a rollback to a schema-1 model) is a catalog
or rollout change, not a code change.
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
    from modelbaton.pipeline.patches import PATCH_CLASSIFY_V2, PATCH_MODEL_ASSIGNMENT


#: New (assigned) workflows classify with a model of either raw output schema.
SERVES_SCHEMAS: frozenset[int] = frozenset({1, 2})


@workflow.defn(name=WORKFLOW_TYPE)
class DocumentClassificationWorkflow(DocumentClassificationBase):
    """Assigned code: pool dispatch by output schema, with both older paths kept for replay."""

    async def _classify(
        self, inp: ClassifyDocumentInput
    ) -> tuple[str, NormalizedClassificationResult]:
        if inp.assignment is not None and workflow.patched(PATCH_MODEL_ASSIGNMENT):
            return await self._classify_assigned(inp, inp.assignment)
        config = self._legacy_config(inp)
        if workflow.patched(PATCH_CLASSIFY_V2):
            return "v2", await self._call_classifier(inp, CLASSIFY_V2, config)
        return "v1", await self._call_classifier(inp, CLASSIFY_V1, config)

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        return await self._run(inp)
