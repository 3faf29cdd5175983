"""The monitor's report as markdown: the verdict, live accuracy with its interval and coverage, a row per test."""

from mnist_pipeline.monitoring.verdict import Report


def report_lines(report: Report, version: str | None, damaged: list[str]) -> list[str]:
    """The markdown of the run's `monitoring` artifact, figures apart."""
    lines = [f"# Monitoring {version or '(no version)'}: **{report.verdict}**", report.reason]
    if report.live_accuracy is not None:
        low, high = report.interval
        lines.append(
            f"Live accuracy {report.live_accuracy:.4f} (95% Wilson interval {low:.4f}-{high:.4f}) on "
            f"{report.labels} labels of {report.predictions} predictions (coverage "
            f"{report.labels / max(report.predictions, 1):.1%}); reference {report.reference_accuracy:.4f}"
        )
    if report.tests:
        rows = [
            f"| {name} | {test.statistic:.4g} | {test.p_value:.3g} | {test.threshold:.3g} | "
            f"{'**alarm**' if test.alarm else 'ok'} | {test.detail} |"
            for name, test in report.tests.items()
        ]
        lines.append(
            "| test | statistic | p-value | threshold | result | detail |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows)
        )
    if damaged:
        lines.append("Skipped damaged log objects: " + ", ".join(f"`{name}`" for name in damaged))
    return lines
