"""A real PostgreSQL server per test session, and a fresh database per test that asks for one.

The server is the system's PostgreSQL (Debian's ``postgresql`` package; ``.ci/run`` installs it):
``initdb`` into a temporary directory, then ``postgres`` itself as a child of this process on an
ephemeral port, its socket in the same directory, trust authentication. It is stopped by the PID
it was started with. ``initdb`` and ``postgres`` refuse to run as root, so as root (CI) both run as
the unprivileged ``postgres`` user that the package creates, and the directory is handed to it.

Without a server installed the tests that need one fail, saying how to install it: a PostgreSQL
test that silently skips would pass CI without ever having run.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from modelbaton.stack.processes import free_port
from waiting import eventually

SUPERUSER = "baton"
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, postgres) were not found. Install them with "
    "`make postgres` (Debian/Ubuntu, as root or with sudo: apt-get install postgresql), or set "
    "MODELBATON_PG_BINDIR to a directory holding initdb and postgres."
)


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``postgres``: MODELBATON_PG_BINDIR, Debian's, or PATH."""
    candidates: list[Path] = []
    if explicit := os.environ.get("MODELBATON_PG_BINDIR"):
        candidates.append(Path(explicit))  # when set, the only place looked at
        return candidates[0] if _has_server(candidates[0]) else None

    def major(path: Path) -> int:
        return int(path.name) if path.name.isdigit() else -1

    debian = sorted(Path("/usr/lib/postgresql").glob("*"), key=major, reverse=True)
    candidates += [d / "bin" for d in debian]
    if on_path := shutil.which("initdb"):
        candidates.append(Path(on_path).resolve().parent)
    return next((bindir for bindir in candidates if _has_server(bindir)), None)


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


@dataclass
class PostgresServer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the maintenance database (CREATE/DROP DATABASE)."""
        return psycopg.connect(self.url(driver="postgresql"), autocommit=True)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _run_as() -> dict[str, Any]:
    """Popen arguments that drop root to the ``postgres`` user; nothing when not root."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            "running as root, and PostgreSQL refuses to; create its user: "
            "useradd --system --home-dir /var/lib/postgresql postgres",
            pytrace=False,
        )
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT) of the postmaster by its PID; immediate (SIGQUIT) if it lingers."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGINT, 20), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        process.send_signal(sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def launch(bindir: Path, base: Path, as_user: dict[str, Any]) -> PostgresServer:
    """``initdb`` a cluster under ``base`` and start its postmaster; it may not be ready yet."""
    data = base / "data"
    initdb = subprocess.run(
        [
            str(bindir / "initdb"),
            f"--pgdata={data}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        capture_output=True,
        check=False,
        **as_user,
    )
    if initdb.returncode != 0:
        pytest.fail(f"initdb failed: {initdb.stderr.decode(errors='replace')}", pytrace=False)
    log = base / "postgres.log"
    port = free_port()
    with log.open("wb") as log_file:
        if as_user:
            os.chown(log, as_user["user"], as_user["group"])
        # A throwaway cluster: durability only costs time here.
        settings = ["listen_addresses=127.0.0.1", "fsync=off", "synchronous_commit=off"]
        settings.append("full_page_writes=off")
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(base)]
            + [arg for setting in settings for arg in ("-c", setting)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **as_user,
        )
    return PostgresServer(port, process, log)


@pytest.fixture(scope="session")
async def postgres_server() -> AsyncIterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    as_user = _run_as()
    base = Path(tempfile.mkdtemp(prefix="modelbaton-pg-"))
    if as_user:
        os.chown(base, as_user["user"], as_user["group"])
    server: PostgresServer | None = None
    try:
        server = launch(bindir, base, as_user)
        process = server.process

        def accepts_connections() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"postgres exited with {process.returncode}")
            try:
                with server.admin() as conn:
                    conn.execute("SELECT 1")
            except psycopg.OperationalError:
                return False
            return True

        try:
            await eventually(accepts_connections, within=60, what="PostgreSQL accepting")
        except (AssertionError, RuntimeError) as exc:
            pytest.fail(f"{exc}; server log:\n{server.log_tail()}", pytrace=False)
        yield server
    finally:
        if server is not None:
            stop(server.process)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A SQLAlchemy URL of a database no other test uses, dropped afterwards."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)
