"""The reference pipeline's defaults, kept free of heavy imports so the CLI can show them in
--help. Commands take their workflows from the project (``modelbaton.project.resolve_project``);
these are what the built-in reference project names when no config is given or found."""

#: The reference pipeline's workflow classes.
DEFAULT_WORKFLOWS = ("modelbaton.pipeline.workflow:DocumentClassificationWorkflow",)
#: The live workflows the replay gate fetches for the reference pipeline (shown in --help).
DEFAULT_QUERY = "WorkflowType = 'DocumentClassificationWorkflow' AND ExecutionStatus = 'Running'"
