"""The demo from start to end: the embedded stack it runs on (act 1), the acts in their order, and
stopping what it started (act 9), or keeping it with ``--keep``."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from rich.console import Console
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from modelbaton import Settings
from modelbaton.demo.bad_candidate import demo_catalog, try_v4
from modelbaton.demo.blue_green import blue_green
from modelbaton.demo.canonical import show_raw_vs_canonical
from modelbaton.demo.code_upgrade import after_the_patch, before_the_patch, deploy
from modelbaton.demo.documents import DEMO_QUEUE, Demo, Workers, make_batch
from modelbaton.demo.model_upgrade import upgrade_to_v3
from modelbaton.demo.reviews import complete_reviews
from modelbaton.demo.summary import summarize
from modelbaton.models import load_catalog
from modelbaton.stack import StackOptions, start_stack, stop_stack


def main(
    home: Path | None = None,
    per_batch: int = 12,
    review_threshold: float = 0.8,
    keep: bool = False,
    *,
    workers: Workers,
) -> int:
    """Run the demo in a fresh state directory; return the process exit code.

    With ``keep`` the stack stays up afterwards to explore (Web UI, ``baton`` commands).
    ``workers`` builds the blue-green act's in-process workers (``modelbaton.app`` gives them).
    """
    console = Console()
    settings = Settings.from_env()
    home = home or settings.home / "demo"
    # A stack kept by an earlier 'demo --keep' runs from this folder: stop it before clearing.
    stop_stack(home)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return asyncio.run(run(console, home, per_batch, review_threshold, workers, keep))


async def run(
    console: Console,
    home: Path,
    per_batch: int,
    review_threshold: float,
    workers: Workers,
    keep: bool = False,
) -> int:
    """The demo on a stack of its own. The stack's processes (and every shell the demo starts,
    through the stack's variables) read the demo's catalog, v4 included, and this process's
    trained-model cache: given in the stack's options, never written into this environment."""
    settings = Settings.from_env()
    catalog_path = demo_catalog(home, settings.catalog_path)
    options = StackOptions(
        home=home,
        workers=1,
        release="initial",
        task_queue=DEMO_QUEUE,
        ephemeral_ports=True,
        pools=("v2", "v3", "v4"),
        catalog=catalog_path,
        cache_dir=settings.cache_dir,
    )
    console.rule("[bold]1. embedded stack, worker on the PRE-PATCH release")
    console.print(
        "starting Temporal, the model server (the first run trains the reference models, "
        "about a minute), the v2 and v3 pools and a worker ..."
    )
    state = start_stack(options)
    try:
        console.print(
            f"Temporal {state.temporal_address} (UI {state.ui_url}), "
            f"models {state.model_base_url}, state in {home}"
        )
        client = await Client.connect(
            state.temporal_address,
            namespace=state.namespace,
            data_converter=pydantic_data_converter,
        )
        catalog = load_catalog(catalog_path, base_url=state.model_base_url)
        pipeline = catalog.pipeline.model_copy(update={"review_threshold": review_threshold})
        demo = Demo(console, home, state, client, catalog, pipeline, per_batch, workers)
        before = make_batch("before", per_batch, seed=101)
        await show_raw_vs_canonical(console, catalog, before.docs[0].text)

        waiting = await before_the_patch(demo, before)
        deploy(demo)
        after = await after_the_patch(demo, waiting)
        upgrade, first_rollout = await upgrade_to_v3(demo)
        bad = await try_v4(demo, first_rollout)
        await complete_reviews(demo, [before, after, upgrade, bad])
        cutover, drain_code = await blue_green(demo)

        ok = await summarize(console, [before, after, upgrade, bad, cutover])
        return ok or drain_code
    finally:
        if keep:
            console.rule("[bold]9. the stack keeps running (--keep)")
            console.print(f"Temporal Web UI: {state.ui_url}")
            console.print(f'point this shell at it: eval "$(baton dev env --home {home})"')
            console.print("then: baton rollout status, baton pending, baton results")
            console.print(f"stop it: baton dev down --home {home}")
        else:
            console.rule("[bold]9. stopping everything the demo started")
            for stopped in stop_stack(home):
                console.print(f"stopped {stopped}")
