"""Workflow variants the tests register beside (or instead of) the real releases: a broken release,
a careless refactor, an unsafe restore, a routing probe. Not pytest fixtures."""
