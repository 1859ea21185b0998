"""Defaults of the operations, kept free of heavy imports so the CLI can show them in --help."""

#: Workflow classes the replay gate checks unless told otherwise.
DEFAULT_WORKFLOWS = ("modelbaton.pipeline.workflow:DocumentClassificationWorkflow",)
#: Live workflows the replay gate fetches unless told otherwise.
DEFAULT_QUERY = "WorkflowType = 'DocumentClassificationWorkflow' AND ExecutionStatus = 'Running'"
