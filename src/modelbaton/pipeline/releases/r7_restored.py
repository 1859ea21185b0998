"""Release 7, restored: the schema-1 path that ``complete`` removed, reintroduced as a new patch.

This is the article's rollback scenario C. On ``complete`` the v2 path is the only code, so a
rollback to a schema-1 model (``v1``) has nowhere to run: ``classify_document_v2`` refuses a
schema-1 model, and switching the workers back to a release that still calls
``classify_document_v1`` would break every running ``complete`` workflow on replay (their
histories hold ``classify_document_v2`` with no marker).

So the old path comes back behind a new patch id, the patch API used in the other direction:
complete's code (v2 only) becomes the old branch, and the reverted code, which picks the classify
activity by the configured model's output schema, becomes the new branch. Every history recorded
by ``complete`` has no ``PATCH_RESTORE_V1`` marker and replays through the old branch; new
workflows write the marker and may run model ``v1`` again. ``complete`` itself cannot replay
the new histories: the marker must be matched (``tests/integration/test_replay_histories.py``).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from modelbaton.pipeline.releases._base import DocumentClassificationBase

with workflow.unsafe.imports_passed_through():
    from modelbaton.contracts import NormalizedClassificationResult
    from modelbaton.pipeline.activities import CLASSIFY_BY_SCHEMA
    from modelbaton.pipeline.messages import (
        CLASSIFY_V2,
        WORKFLOW_TYPE,
        ClassificationOutcome,
        ClassifyDocumentInput,
    )
    from modelbaton.pipeline.patches import PATCH_RESTORE_V1

#: New workflows classify with a model of either raw output schema.
SERVES_SCHEMAS: frozenset[int] = frozenset({1, 2})


@workflow.defn(name=WORKFLOW_TYPE)
class DocumentClassificationWorkflow(DocumentClassificationBase):
    """Restored code: ``workflow.patched(PATCH_RESTORE_V1)`` brings the schema-1 path back."""

    async def _classify(
        self, inp: ClassifyDocumentInput
    ) -> tuple[str, NormalizedClassificationResult]:
        config = self._legacy_config(inp)
        if workflow.patched(PATCH_RESTORE_V1):
            # The reverted code: the activity that reads the configured model's output schema.
            schema = config.output_schema_version
            method = CLASSIFY_BY_SCHEMA.get(schema)
            if method is None:
                raise ApplicationError(
                    f"document {inp.document_id}: no classify activity reads output schema "
                    f"v{schema} (model {config.version})",
                    type="UnknownSchemaVersionError",
                    non_retryable=True,
                )
            return f"v{schema}", await self._call_classify_method(inp, method, config)
        # Complete's code, for the histories it recorded.
        return "v2", await self._call_classifier(inp, CLASSIFY_V2, config)

    @workflow.run
    async def run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        return await self._run(inp)
