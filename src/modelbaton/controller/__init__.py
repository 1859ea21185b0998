"""The rollout controller: a plan of steps in TOML, metric gates between them, and the durable
workflow that drives a rollout through them, aborting and rolling back by itself."""
