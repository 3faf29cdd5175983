"""Watching a served model: is a window of its predictions still like the version's reference?

No Prefect, no paths: `statistics` (the tests), `digits` (what a digit looks like, in numbers), `reference` (what
the version answered on images it never trained on), `verdict` (the tests over a window, and what they add up to)
use numpy and scipy only; `figures` draws the report's figures. docs/MONITORING.md says why the thresholds are
what they are.
"""

# In `monitoring/` of the shared store: the monitor flow writes it, the service's /metrics reads it.
LAST_VERDICT_FILE = "last-verdict.json"
