"""Activities of the pipeline's names that answer at once, with no model and no database.

They are the floor of ``bench/throughput.py`` (the same workflow, minus the real work) and serve
tests whose subject is orchestration (markers, visibility, replay), not models. Nothing in the
product registers them.
"""

from __future__ import annotations

from temporalio import activity

from modelbaton.contracts import NormalizedClassificationResult
from modelbaton.pipeline.messages import (
    CLASSIFY_V1,
    CLASSIFY_V2,
    PROCESS_RESULT,
    ClassifyActivityInput,
    ProcessInput,
    ProcessOutput,
)


def _fixed(inp: ClassifyActivityInput) -> NormalizedClassificationResult:
    _, version, schema = inp.identity()
    return NormalizedClassificationResult(
        label="a",
        confidence=0.5,
        scores_by_class={"a": 0.5, "b": 0.5},
        model_version=version,
        schema_version=schema,
    )


@activity.defn(name=CLASSIFY_V1)
async def fixed_classify_v1(inp: ClassifyActivityInput) -> NormalizedClassificationResult:
    return _fixed(inp)


@activity.defn(name=CLASSIFY_V2)
async def fixed_classify_v2(inp: ClassifyActivityInput) -> NormalizedClassificationResult:
    return _fixed(inp)


@activity.defn(name=PROCESS_RESULT)
async def discard_result(inp: ProcessInput) -> ProcessOutput:
    return ProcessOutput(record_id=0, destination="none", created=True)


FLOOR_ACTIVITIES: list[object] = [fixed_classify_v1, fixed_classify_v2, discard_result]
