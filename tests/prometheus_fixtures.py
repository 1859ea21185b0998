"""A real Prometheus server for the tests of the Prometheus gate, scraping an exporter the test
sets the figures of.

The server is the system's Prometheus (Debian's ``prometheus`` package; ``.ci/run`` installs it
with ``scripts/install-prometheus``), started as a child of this process with a throwaway config
and data folder on an ephemeral port, and stopped by the PID it was started with. The exporter
is a plain HTTP endpoint in this process serving the Prometheus text format; Prometheus scrapes
it every 200 ms. Without the binary the tests that need it fail, saying how to install it: a
silent skip would pass CI without them ever having run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from modelbaton.stack.processes import free_port
from waiting import eventually

INSTALL_HINT = (
    "Prometheus was not found. Install it with scripts/install-prometheus (Debian/Ubuntu, as "
    "root or with sudo: apt-get install prometheus), or set MODELBATON_PROMETHEUS to the binary."
)


def find_prometheus() -> str | None:
    explicit = os.environ.get("MODELBATON_PROMETHEUS")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("prometheus")


@dataclass
class Exporter:
    """The figures Prometheus scrapes: ``{'metric{label="x"}': value}``, changed by the test."""

    figures: dict[str, float] = field(default_factory=dict)
    url: str = ""

    def text(self) -> str:
        return "".join(f"{series} {value}\n" for series, value in dict(self.figures).items())


@dataclass(frozen=True)
class Prometheus:
    url: str
    exporter: Exporter

    async def sees(self, series: str) -> None:
        """Wait until Prometheus has scraped ``series`` with the exporter's current value."""
        want = self.exporter.figures[series]

        async def scraped() -> bool:
            async with httpx.AsyncClient(timeout=2.0) as http:
                body = (await http.get(f"{self.url}/api/v1/query", params={"query": series})).json()
            result = body.get("data", {}).get("result", [])
            return len(result) == 1 and float(result[0]["value"][1]) == want

        await eventually(scraped, within=30.0, what=f"Prometheus scraped {series}")


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    made = Exporter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = made.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    made.url = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield made
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class _Process:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


@pytest.fixture
def prometheus_process(exporter: Exporter, tmp_path: Path) -> Iterator[_Process]:
    """The server's process, scraping ``exporter``; stopped by its PID at the end."""
    binary = find_prometheus()
    if binary is None:
        pytest.fail(INSTALL_HINT)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 200ms\n  evaluation_interval: 200ms\n"
        "scrape_configs:\n  - job_name: exporter\n"
        f"    static_configs:\n      - targets: ['{exporter.url}']\n"
    )
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield _Process(process, f"http://127.0.0.1:{port}", log_path)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
async def prometheus(prometheus_process: _Process, exporter: Exporter) -> Prometheus:
    """The server, once it answers ready."""
    started = prometheus_process

    async def ready() -> bool:
        assert started.process.poll() is None, started.log.read_text()[-2000:]
        try:
            async with httpx.AsyncClient(timeout=1.0) as http:
                return (await http.get(f"{started.url}/-/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(ready, within=30.0, what="Prometheus ready")
    return Prometheus(started.url, exporter)
