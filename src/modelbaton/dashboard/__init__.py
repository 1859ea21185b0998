"""``baton ui``: a read-only web page of the pipeline's rollouts, served by the project's process.

:mod:`modelbaton.dashboard.view` gathers everything the page shows into a typed view model
(:class:`~modelbaton.dashboard.view.DashboardView`); :mod:`modelbaton.dashboard.app` renders it
with Jinja2 templates and serves it with FastAPI. No JavaScript library and no CDN: the page's
charts are SVG drawn on the server and its only script (the self-refresh) is ours.
"""
