"""The comparison of cross-validated variants: a table and one figure of box plots side by side."""

from pathlib import Path

from mnist_pipeline.tasks.reporting import CrossValidationSummary
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import files, reports


class ComparisonSummary(BaseModel):
    output_dir: str
    rows: list[dict]


@task(cache_policy=NO_CACHE)
def compare_variants(variants: dict[str, tuple[CrossValidationSummary, float]], output_dir: str) -> ComparisonSummary:
    rows = [
        {
            "variant": name,
            "mean": summary.mean,
            "std": summary.std,
            "n": summary.n,
            "seconds": round(seconds, 1),
            "training_seconds": round(summary.training_seconds, 1),
        }
        for name, (summary, seconds) in variants.items()
    ]
    logger = get_run_logger()
    for row in rows:
        logger.info(
            "%s: mean=%.3f std=%.3f, n=%d, %.0f s (folds trained for %.0f s)",
            row["variant"],
            100 * row["mean"],
            100 * row["std"],
            row["n"],
            row["seconds"],
            row["training_seconds"],
        )

    output = Path(output_dir)
    figure = reports.png_bytes(reports.box_plots({name: summary.accuracies for name, (summary, _) in variants.items()}))
    files.write_bytes(output / "comparison_boxplots.png", figure)
    files.write_json(output / "comparison.json", {"variants": rows})
    table = [{**row, "mean": round(100 * row["mean"], 3), "std": round(100 * row["std"], 3)} for row in rows]
    create_table_artifact(table, key="variant-comparison", description="cross-validated accuracy (%) per variant")
    markdown_rows = "\n".join(
        f"| {r['variant']} | {r['mean']:.3f} | {r['std']:.3f} | {r['n']} | {r['seconds']:.0f} | {r['training_seconds']:.0f} |"
        for r in table
    )
    create_markdown_artifact(
        "# Variant comparison\n\n| variant | mean (%) | std | n | seconds | fold training seconds |\n|---|---|---|---|---|---|\n"
        + markdown_rows
        + "\n\n"
        + reports.markdown_image(figure, "fold accuracies per variant"),
        key="variant-comparison-summary",
        description=f"{len(rows)} variants",
    )
    return ComparisonSummary(output_dir=str(output), rows=rows)
