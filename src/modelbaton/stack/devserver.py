"""The embedded Temporal dev server: flags shared by ``baton dev up`` and the test fixtures."""

from __future__ import annotations

#: Dynamic config the embedded server runs with.
#: - TemporalReportedProblems gets filled after two consecutive workflow-task failures, so
#:   ``baton status`` can find workflows stuck on non-determinism (off by default in Temporal).
#: - Worker-versioning drainage becomes visible after 10 s instead of 180 s.
DEV_SERVER_DYNAMIC_CONFIG: tuple[str, ...] = (
    "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=2",
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod="10s"',
)
