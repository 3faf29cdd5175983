"""Watching a served model: is a window of its predictions still like the version's reference?

No Prefect, no paths: `statistics` (the tests), `digits` (what a digit looks like, in numbers), `reference` (what
the version answered on images it never trained on), `verdict` (the tests over a window, and what they add up to)
use numpy and scipy only; `figures` draws the report's figures. docs/MONITORING.md says why the thresholds are
what they are.
"""
