"""The embedded Temporal dev server: flags shared by ``baton dev up`` and the test fixtures."""

from __future__ import annotations

from pathlib import Path

from modelbaton.pipeline import search_attributes

#: Dynamic config the embedded server runs with.
#: - TemporalReportedProblems gets filled after two consecutive workflow-task failures, so
#:   ``baton status`` can find workflows stuck on non-determinism (off by default in Temporal).
#: - Worker Versioning: a build's server-side drainage turns DRAINED 5 s after its last pinned
#:   workflow closed, checked every 2 s, instead of after 180 s (``baton deploy status`` shows it;
#:   ``baton drain`` counts from visibility itself and does not wait for it).
#: - An idle worker's long poll returns after 2 s instead of about a minute, so it polls again
#:   and a describe of its task queue shows a ``last_access_time`` at most about 2 s old while it
#:   lives: that is how ``baton submit`` tells a live pool from one that died seconds ago
#:   (``modelbaton.rollout.client.POOL_LIVENESS_SECONDS``).
DEV_SERVER_DYNAMIC_CONFIG: tuple[str, ...] = (
    "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute=2",
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod="5s"',
    'matching.wv.VersionDrainageStatusRefreshInterval="2s"',
    'matching.longPollExpirationInterval="2s"',
)


#: SQLite pragmas of the server's file: a write-ahead log, synced at checkpoints rather than on
#: every commit. A commit is in the log once the server's write returns, so a SIGKILLed or crashed
#: server loses nothing (the fault tests kill it mid-batch and count); only a crash of the whole
#: machine may lose the last commits, which a dev server can afford. Measured here, 600 workflows
#: of two activities each: 22.3 s of server CPU and 27.5 s of wall time with SQLite's defaults
#: (a rollback journal, a sync per commit), 12.3 to 13.0 s and 11.1 to 11.7 s with these, the same
#: as the server's in-memory store.
SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=wal", "synchronous=normal")


def dynamic_config_flags() -> list[str]:
    """``--dynamic-config-value KEY=VALUE`` for each entry of :data:`DEV_SERVER_DYNAMIC_CONFIG`."""
    flags: list[str] = []
    for entry in DEV_SERVER_DYNAMIC_CONFIG:
        flags += ["--dynamic-config-value", entry]
    return flags


def dev_server_command(
    binary: Path,
    *,
    ip: str,
    port: int,
    ui_port: int | None,
    db_filename: Path,
    namespace: str = "default",
) -> list[str]:
    """The ``temporal server start-dev`` argv of the embedded stack.

    ``ui_port=None`` runs the server headless. The SQLite file keeps every workflow across
    restarts (written through a write-ahead log, :data:`SQLITE_PRAGMAS`). The
    ``--search-attribute`` flags only take effect when the file is created: on a
    restart the server keeps what the file has and silently ignores flags for attributes it lacks,
    so the caller must also register missing ones through the operator service (see
    ``modelbaton.stack.embedded``).
    """
    command = [
        str(binary),
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--db-filename",
        str(db_filename),
    ]
    for pragma in SQLITE_PRAGMAS:
        command += ["--sqlite-pragma", pragma]
    command += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    if namespace != "default":  # "default" always exists; naming it again is redundant
        command += ["--namespace", namespace]
    return command + search_attributes.dev_server_flags() + dynamic_config_flags()
