"""Retrain on MNIST plus the new labeled examples, evaluate, and promote the new model if it passes the gate."""

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.settings import PREFECT_API_URL

from mnist_pipeline import settings
from mnist_pipeline.approval import Approval, Decision, Review, needs_person
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.gate import users_disagreement
from mnist_pipeline.orchestration.approval import NoDecision, check_approval_possible, wait_for_decision
from mnist_pipeline.orchestration.caching import save_shared_result_storage
from mnist_pipeline.orchestration.temporary_server import is_temporary_server
from mnist_pipeline.tasks.data import LabeledImages, download_mnist, model_ready, normalize_images
from mnist_pipeline.tasks.evaluation import evaluate_model
from mnist_pipeline.tasks.new_data import read_store_examples
from mnist_pipeline.tasks.publishing import publish_approval_request, publish_promotion, publish_registry
from mnist_pipeline.tasks.registry import (
    Promotion,
    champion_trained_alike,
    champion_without_metrics_for,
    gate_verdict,
    judge_version,
    read_champion,
    request_approval,
    resolve_version,
)
from mnist_pipeline.training_request import TrainingRequest

NOBODY_TO_ASK = "without a Prefect server nobody can be asked (set PREFECT_API_URL for a person to decide)"


def users_accuracy(version: str, users: LabeledImages) -> float:
    """A registered model's accuracy on the held-out new examples (the users' digits)."""
    model = resolve_version(version)
    return evaluate_model(model.path, normalize_images(users.images, model.scaling), users.labels).accuracy


@flow(name="retrain", flow_run_name=p.run_name("retrain-{model}-s{seed}"))
@p.described(
    "Train a new model version on MNIST and the new labeled examples, evaluate it, and make it champion if it "
    "passes the gate."
)
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
    min_accuracy: p.Fraction = 0.98,
    force: bool = False,
    approval: Approval = "auto",
    approval_timeout_hours: p.Hours = 24,
    output_dir: p.Folder = "",
) -> Promotion:
    check_approval_possible(approval)
    save_shared_result_storage()
    output = Path(settings.run_dir("retrain", output_dir, run_id=flow_run.get_id()))
    request = TrainingRequest.among(flow_run.parameters, new_data=True)  # model, epochs, ..., member_model
    raw = download_mnist(data_dir)
    examples = read_store_examples()
    data = {"train_images": raw.train_images.sha256, "store_digest": examples.digest}
    unchanged = champion_trained_alike(request, data)
    if unchanged and not force:
        reason = f"no new data since {unchanged}: its data and training parameters are these (force=true retrains)"
        get_run_logger().info(reason)
        return Promotion(
            version=None, promoted=False, reason=reason, previous_champion=unchanged, output_dir=str(output)
        )
    trained = finalize(**request.model_dump(), data_dir=data_dir, output_dir=str(output / "finalize"))
    evaluation = evaluate(model_version=trained.version, data_dir=data_dir, output_dir=str(output / "evaluate"))
    stale_champion = champion_without_metrics_for(evaluation.test_data)
    if stale_champion:
        evaluate(model_version=stale_champion, data_dir=data_dir, output_dir=str(output / f"evaluate-{stale_champion}"))
    users_digits = None
    if examples.held_out.labels.shape[0]:
        users = model_ready(examples.held_out)
        champion = read_champion()
        users_digits = {
            "examples": examples.held_out.labels.shape[0],
            "challenger": users_accuracy(trained.version, users),
            "champion": users_accuracy(champion, users) if champion else None,
        }
    review = None
    verdict = gate_verdict(trained.version, tolerance, min_accuracy)
    disagreement = verdict.passes and users_disagreement(verdict.accuracy, verdict.champion_accuracy, users_digits)
    if disagreement and is_temporary_server(PREFECT_API_URL.value()):
        review = Review(Decision.REJECT, "the users' digits rule", f"{disagreement}; {NOBODY_TO_ASK}")
    elif verdict.passes and (
        disagreement or needs_person(approval, verdict.accuracy, verdict.champion_accuracy, users_digits, tolerance)
    ):
        timeout = int(approval_timeout_hours * 3600)
        request_approval(trained.version, flow_run.get_id(), timeout)
        publish_approval_request(trained.version, verdict, users_digits)
        review = wait_for_decision(timeout)
    promotion = judge_version(trained.version, tolerance, min_accuracy, str(output), users_digits, review)
    publish_promotion(promotion)
    publish_registry()
    if review and review.decision is Decision.NONE:
        raise NoDecision(
            f"{trained.version} rejected: {review.reason} (approval_timeout_hours={approval_timeout_hours:g}); "
            f"to serve it anyway: mnist-pipeline promote {trained.version} --reason ..."
        )
    return promotion
