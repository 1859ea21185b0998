"""``baton demo``: the article's upgrade, end to end, on the embedded stack. One module per act:

1. ``run``: bring up a real Temporal dev server, the model server and one worker on the PRE-PATCH
   release; ``canonical``: the same document's raw output of v1 and v2 beside the canonical
   contract.
2. ``code_upgrade``: submit a batch classified by model v1 (uncertain documents wait at the
   review checkpoint), 3. restart the worker on the current release (the deploy) while those
   documents are in flight, 4. submit a second batch: each document is assigned model v2 and runs
   on v2's worker pool.
5. ``model_upgrade``: the rollout controller upgrades to v3 unattended while documents keep
   arriving (``traffic``): a shadow of every document until its verdict is READY, a 30 % canary,
   the promotion.
6. ``bad_candidate``: a quietly wrong candidate, v4: valid output, consistent scores, the wrong
   class on about 30 % of documents. The baseline also answers every canary document (off the
   primary path), so the agreement gate sees v4 disagree far beyond the baseline's own noise,
   without a single review; the controller aborts and restarts v4's documents on the baseline
   (rollback scenario B); the audit trail of both rollouts is printed.
7. ``reviews``: complete every pending review (the reviewer gives the document's true class).
8. ``blue_green``: blue-green cutover on Worker Versioning: documents pinned to build blue wait
   at review while build green becomes current and takes new ones; ``baton drain --from blue``
   shows a progress bar until the last blue workflow closes.
9. ``summary``: per branch and model version, all results in the canonical contract, zero
   failures; then ``run`` stops everything that was started (or keeps it, ``--keep``).

``documents`` holds what the acts share: batches with their true labels, documents that arrive
for as long as a rollout needs them, and the waits on the workflows' states.
"""

from __future__ import annotations

from modelbaton.demo.run import main

__all__ = ["main"]
