"""Composition: which workflows and activities a worker registers, the one place that knows every
room (the pipeline's, the rollout's, the controller's, Worker Versioning's)."""
