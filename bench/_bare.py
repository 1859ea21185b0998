"""The physical floor of one Python worker: a workflow that only calls two no-op activities.

No search attributes, no patch marker, no handlers, no Pydantic: a short string in, the same
string through two activities, back out, with the SDK's default data converter. Whatever the
project floor (``_floor.py``) costs beyond this is the price of the workflow's
shape, not of Temporal or Python.

It lives in its own module, not in ``throughput.py``: the sandbox re-imports a workflow's module
by name, which it cannot do for ``__main__``. ``throughput.py`` puts this directory on
``sys.path`` first, so the sandbox finds it as ``_bare``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BARE_WORKFLOW_TYPE = "BareTwoActivityWorkflow"
_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bare_first")
async def bare_first(value: str) -> str:
    return value


@activity.defn(name="bare_second")
async def bare_second(value: str) -> str:
    return value


BARE_ACTIVITIES: list[object] = [bare_first, bare_second]


@workflow.defn(name=BARE_WORKFLOW_TYPE)
class BareTwoActivityWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        first = await workflow.execute_activity(bare_first, value, start_to_close_timeout=_TIMEOUT)
        return await workflow.execute_activity(bare_second, first, start_to_close_timeout=_TIMEOUT)
