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

Frozen: this file is the whole release as it stands, self-contained (its own copy of what
the releases once shared), and is never edited: ``tests/unit/test_frozen_releases.py`` holds
its digest. Today's code is ``modelbaton.pipeline.workflow``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from modelbaton.contracts import ModelVersionConfig, NormalizedClassificationResult
    from modelbaton.contracts.config import CLASSIFY_ATTEMPT_SECONDS
    from modelbaton.contracts.rollout import ModelAssignment
    from modelbaton.pipeline import search_attributes as sa
    from modelbaton.pipeline.activities import (
        CLASSIFY_BY_SCHEMA,
        ClassifyMethod,
        PipelineActivities,
    )
    from modelbaton.pipeline.messages import (
        CLASSIFY_V2,
        WORKFLOW_TYPE,
        CarriedClassification,
        ClassificationOutcome,
        ClassifyActivityInput,
        ClassifyDocumentInput,
        Outcome,
        ProcessInput,
        ReviewDecision,
        ReviewReceipt,
        WorkflowState,
        WorkflowStatusView,
    )
    from modelbaton.pipeline.patches import PATCH_RESTORE_V1

#: Model calls: transient failures (5xx, timeouts, refused connections) retry with backoff; a
#: malformed output, a rejected request or a misconfiguration fails the document at once.
CLASSIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=["ModelOutputError", "ConfigError", "UnknownSchemaVersionError"],
)
#: Model calls on the assigned path: transient failures retry until the catalog's retry window for
#: that model (enforced by the activity, read at call time) runs out, not after a fixed count.
ASSIGNED_CLASSIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=CLASSIFY_RETRY.non_retryable_error_types,
)
#: Database writes are idempotent, so retrying them is always safe.
PROCESS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
)
#: Time for one model call attempt beyond the endpoint's own timeout (queueing, normalization).
_CLASSIFY_SLACK = timedelta(seconds=10)


class DocumentClassificationBase:
    """Shared state and handlers; subclasses add ``@workflow.defn`` and ``@workflow.run``."""

    def __init__(self) -> None:
        self._document_id = ""
        self._state = WorkflowState.CLASSIFYING
        self._branch: str | None = None
        self._result: NormalizedClassificationResult | None = None
        self._allowed_labels: frozenset[str] = frozenset()
        self._review: ReviewDecision | None = None
        self._escalated = False
        self._assignment: ModelAssignment | None = None
        #: The final label and how it was decided, once known (before the downstream write).
        self._final: tuple[str, Outcome] | None = None

    @staticmethod
    def _legacy_config(inp: ClassifyDocumentInput) -> ModelVersionConfig:
        """The configuration recorded by inputs from before the assignment patch."""
        if inp.deployment is None:
            raise ApplicationError(
                f"document {inp.document_id}: this workflow release needs a 'deployment' input",
                type="ConfigError",
                non_retryable=True,
            )
        return inp.deployment.primary_version

    async def _classify(
        self, inp: ClassifyDocumentInput
    ) -> tuple[str, NormalizedClassificationResult]:
        """Return (branch, canonical result). Overridden by each release."""
        raise NotImplementedError

    async def _after_processed(self) -> None:
        """What a release does after the downstream write, before completing (nothing here)."""

    def _safe_point(self) -> bool:
        """Whether nothing of this release is in flight, so a wait may continue as new."""
        return True

    async def _call_classifier(
        self, inp: ClassifyDocumentInput, activity_name: str, config: ModelVersionConfig
    ) -> NormalizedClassificationResult:
        try:
            result: NormalizedClassificationResult = await workflow.execute_activity(
                activity_name,
                ClassifyActivityInput(document_id=inp.document_id, text=inp.text, config=config),
                result_type=NormalizedClassificationResult,
                start_to_close_timeout=timedelta(seconds=config.timeout_seconds) + _CLASSIFY_SLACK,
                retry_policy=CLASSIFY_RETRY,
            )
            return result
        except ActivityError as exc:
            _raise_if_permanent(inp, exc)
            raise

    async def _call_classify_method(
        self, inp: ClassifyDocumentInput, method: ClassifyMethod, config: ModelVersionConfig
    ) -> NormalizedClassificationResult:
        """:meth:`_call_classifier` for a classify activity picked from ``CLASSIFY_BY_SCHEMA``:
        the same command, scheduled by typed reference instead of by name."""
        try:
            return await workflow.execute_activity_method(
                method,
                ClassifyActivityInput(document_id=inp.document_id, text=inp.text, config=config),
                start_to_close_timeout=timedelta(seconds=config.timeout_seconds) + _CLASSIFY_SLACK,
                retry_policy=CLASSIFY_RETRY,
            )
        except ActivityError as exc:
            _raise_if_permanent(inp, exc)
            raise

    async def _classify_assigned(
        self, inp: ClassifyDocumentInput, assignment: ModelAssignment
    ) -> tuple[str, NormalizedClassificationResult]:
        """Classify on the assigned model's pool, with the activity that reads its schema.

        Dispatch is by the assignment's output schema, not by a patch branch, so going back to a
        schema-1 model (a rollback) is a catalog or rollout change, not a code change.
        """
        schema = assignment.output_schema_version
        method = CLASSIFY_BY_SCHEMA.get(schema)
        if method is None:
            raise ApplicationError(
                f"document {inp.document_id}: no classify activity reads output schema "
                f"v{schema} (model {assignment.model_version})",
                type="UnknownSchemaVersionError",
                non_retryable=True,
            )
        try:
            result = await workflow.execute_activity_method(
                method,
                ClassifyActivityInput(
                    document_id=inp.document_id,
                    text=inp.text,
                    model_id=assignment.model_id,
                    model_version=assignment.model_version,
                    output_schema_version=schema,
                ),
                task_queue=assignment.task_queue,
                start_to_close_timeout=timedelta(seconds=CLASSIFY_ATTEMPT_SECONDS),
                retry_policy=ASSIGNED_CLASSIFY_RETRY,
            )
        except ActivityError as exc:
            _raise_if_permanent(inp, exc)
            raise
        return f"v{schema}", result

    async def _run(self, inp: ClassifyDocumentInput) -> ClassificationOutcome:
        self._document_id = inp.document_id
        self._assignment = inp.assignment
        if inp.carried is not None:  # continued onto a new build at review: classified already
            branch, result = inp.carried.branch, inp.carried.result
        else:
            branch, result = await self._classify(inp)
        self._branch, self._result = branch, result
        labels = inp.deployment.primary_version.labels if inp.deployment else None
        self._allowed_labels = frozenset(labels or result.scores_by_class)
        if self._assignment is None:
            # Assigned workflows got these at start; older histories upserted them here.
            workflow.upsert_search_attributes(
                [
                    sa.MODEL_VERSION.value_set(result.model_version),
                    sa.OUTPUT_SCHEMA_VERSION.value_set(result.schema_version),
                ]
            )

        final_label, outcome, reviewer = result.label, Outcome.AUTO, None
        if result.confidence < inp.review_threshold:
            self._state = WorkflowState.AWAITING_REVIEW
            workflow.upsert_search_attributes([sa.REVIEW_STATE.value_set("pending")])
            try:
                if inp.upgrade_at_review:
                    await self._await_review_or_upgrade(inp, branch, result)
                else:
                    await workflow.wait_condition(
                        lambda: self._review is not None, timeout=inp.review_timeout
                    )
            except TimeoutError:
                self._escalated = True
                outcome = Outcome.ESCALATED
                workflow.upsert_search_attributes([sa.REVIEW_STATE.value_set("escalated")])
            else:
                assert self._review is not None
                final_label, outcome, reviewer = (
                    self._review.label,
                    Outcome.REVIEWED,
                    self._review.reviewer,
                )
                workflow.upsert_search_attributes([sa.REVIEW_STATE.value_set("reviewed")])

        self._state = WorkflowState.PROCESSING
        self._final = (final_label, outcome)
        info = workflow.info()
        processed = await workflow.execute_activity_method(
            PipelineActivities.process_classification_result,
            ProcessInput(
                document_id=inp.document_id,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                branch=branch,
                result=result,
                final_label=final_label,
                outcome=outcome,
                reviewer=reviewer,
                arm=self._assignment.arm.value if self._assignment else None,
                rollout_id=self._assignment.rollout_id if self._assignment else None,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROCESS_RETRY,
        )
        self._state = WorkflowState.DONE
        await self._after_processed()
        return ClassificationOutcome(
            document_id=inp.document_id,
            branch=branch,
            result=result,
            final_label=final_label,
            outcome=outcome,
            destination=processed.destination,
            record_id=processed.record_id,
            assignment=self._assignment,
        )

    async def _await_review_or_upgrade(
        self, inp: ClassifyDocumentInput, branch: str, result: NormalizedClassificationResult
    ) -> None:
        """Wait for the review; if the deployment's current build changes meanwhile, continue as
        new onto it (a safe point: nothing is in flight). TimeoutError at the review deadline.

        The wait wakes every ``upgrade_check``: Temporal tells a workflow that its target build
        changed only when the workflow runs a task, and a review wait runs none by itself.
        """
        deadline = (
            inp.carried.review_deadline if inp.carried else workflow.now() + inp.review_timeout
        )

        def moved() -> bool:
            return workflow.info().is_target_worker_deployment_version_changed() and (
                self._safe_point()
            )

        while self._review is None:
            if moved():
                carried = CarriedClassification(
                    branch=branch,
                    result=result,
                    review_deadline=deadline,
                    from_run_id=workflow.info().run_id,
                )
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    inp.model_copy(update={"carried": carried}),
                    initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
                )
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                raise TimeoutError("review deadline passed")
            try:
                await workflow.wait_condition(
                    lambda: self._review is not None or moved(),
                    timeout=min(remaining, inp.upgrade_check),
                )
            except TimeoutError:
                continue

    @workflow.update
    async def submit_review(self, decision: ReviewDecision) -> ReviewReceipt:
        """Record a human verdict; accepted only while the document awaits review."""
        self._review = decision
        assert self._result is not None
        return ReviewReceipt(
            document_id=self._document_id,
            accepted_label=decision.label,
            changed=decision.label != self._result.label,
        )

    @submit_review.validator
    def _validate_review(self, decision: ReviewDecision) -> None:
        if self._state is not WorkflowState.AWAITING_REVIEW or self._review is not None:
            raise ValueError(
                f"document {self._document_id} is not awaiting review (state: {self._state})"
            )
        if decision.label not in self._allowed_labels:
            raise ValueError(
                f"unknown label {decision.label!r}; expected one of {sorted(self._allowed_labels)}"
            )

    @workflow.query
    def status(self) -> WorkflowStatusView:
        """Where the document is: classifying, awaiting review, processing or done."""
        return WorkflowStatusView(
            document_id=self._document_id,
            state=self._state,
            branch=self._branch,
            result=self._result,
            review=self._review,
            escalated=self._escalated,
            assignment=self._assignment,
        )


def _raise_if_permanent(inp: ClassifyDocumentInput, exc: ActivityError) -> None:
    """End the document in a clear, typed state on a permanent model error."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        raise ApplicationError(
            f"document {inp.document_id}: {cause.message}",
            *cause.details,
            type=cause.type,
            non_retryable=True,
        ) from exc


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
