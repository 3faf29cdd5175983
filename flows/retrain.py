"""Retrain, evaluate, and promote the new model only if it is at least as good as the champion."""

from pathlib import Path

from prefect import flow

from mnist_pipeline import settings
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.tasks.publishing import publish_promotion, publish_registry
from mnist_pipeline.tasks.registry import Promotion, champion_without_metrics_for, judge_version


@flow(name="retrain", flow_run_name=p.run_name("retrain-{model}-s{seed}"))
@p.described("Finalize a new model version, evaluate it, and make it champion if it is at least as good.")
def retrain(
    model: p.Model = "deeper",
    epochs: p.Epochs = 0,
    batch_size: p.BatchSize = 32,
    learning_rate: p.LearningRate = 0.0,
    scaling: p.Scaling = "unit",
    limit: p.Limit = 0,
    seed: int = 1,
    data_dir: p.Folder = "",
    h5: bool = False,
    tolerance: p.Tolerance = 0.001,
    members: p.Members = 5,
    member_model: p.SingleModel = "improved",
    output_dir: p.Folder = "",
) -> Promotion:
    output = Path(settings.run_dir("retrain", output_dir))
    trained = finalize(
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        scaling=scaling,
        limit=limit,
        seed=seed,
        data_dir=data_dir,
        h5=h5,
        members=members,
        member_model=member_model,
        output_dir=str(output / "finalize"),
    )
    evaluation = evaluate(model_version=trained.version, data_dir=data_dir, output_dir=str(output / "evaluate"))
    stale_champion = champion_without_metrics_for(evaluation.test_data)
    if stale_champion:
        evaluate(model_version=stale_champion, data_dir=data_dir, output_dir=str(output / f"evaluate-{stale_champion}"))
    promotion = judge_version(trained.version, tolerance, str(output))
    publish_promotion(promotion)
    publish_registry()
    return promotion
