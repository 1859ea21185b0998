"""modelbaton: safe model upgrades for AI pipelines that run as Temporal workflows."""

__version__ = "0.1.0"
