"""Helpers shared by the benchmarks: ephemeral ports, subprocesses stopped by PID, a dev server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from modelbaton.pipeline.intake import Document


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def model_server(home: Path, timeout: float = 300.0) -> Iterator[str]:
    """Run ``baton models serve`` as a subprocess on a free port; stop it by PID on exit."""
    port = free_port()
    baton = Path(sys.executable).parent / "baton"
    log = (home / "model-server.log").open("w")
    env = os.environ | {"MODELBATON_HOME": str(home)}
    proc = subprocess.Popen(
        [str(baton), "models", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"model server exited; see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"model server did not answer within {timeout}s")
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def peak_rss_mib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def documents(n: int, seed: int) -> list[Document]:
    """``n`` generated documents, the same for one seed, validated as ``baton submit`` does."""
    from modelbaton.models.corpus import generate_documents
    from modelbaton.pipeline.intake import validate_text

    return [
        validate_text(d.text, f"bench:{seed}:{i}")
        for i, d in enumerate(generate_documents(n, seed))
    ]
