"""Flow parameters: types with their bounds and choices, and one description per name.

Prefect validates the types before a run starts (from Python, the CLI, the API or the UI form) and
takes each parameter's description from the flow's docstring, which `described` writes.
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal

from prefect.context import FlowRunContext
from pydantic import AfterValidator, Field
from pydantic.json_schema import SkipJsonSchema

from mnist_pipeline.config import ModelName, SingleModelName
from mnist_pipeline.preprocessing import Scaling


def unset_when_empty(value):
    """0, "" and [] stand for "not set": the flow sees None and uses its own default."""
    return value or None


def zero_or_at_least(minimum: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if 0 < value < minimum:
            raise ValueError(f"must be 0 (all of them) or at least {minimum}")
        return value

    return check


# An optional parameter is a plain field whose empty value (0, "", []) means "not set": the UI's form shows
# a plain number or text box with that default, where `X | None` would show an X/None toggle. The flow
# sees None (Python callers may still pass None, which the schema leaves out).
Model = ModelName
SingleModel = SingleModelName  # what cross-validation and comparisons train per fold: one model, not an ensemble
Folds = Annotated[int, Field(ge=2)]
Members = Annotated[int, Field(ge=2)]
Epochs = Annotated[int, Field(ge=0), AfterValidator(unset_when_empty)] | SkipJsonSchema[None]
BatchSize = Annotated[int, Field(ge=1)]
LearningRate = Annotated[float, Field(ge=0), AfterValidator(unset_when_empty)] | SkipJsonSchema[None]
Limit = (
    Annotated[int, Field(ge=0), AfterValidator(zero_or_at_least(10)), AfterValidator(unset_when_empty)]
    | (SkipJsonSchema[None])
)
Workers = Annotated[int, Field(ge=0), AfterValidator(unset_when_empty)] | SkipJsonSchema[None]
Runner = Literal["process", "thread", "dask"]
DaskAddress = (
    Annotated[str, Field(pattern=r"^((\w+://)?\S+:\d+)?$"), AfterValidator(unset_when_empty)] | (SkipJsonSchema[None])
)
Folder = Annotated[str, AfterValidator(unset_when_empty)] | SkipJsonSchema[None]
Retries = Annotated[int, Field(ge=0, le=10)]
ModelVersion = Annotated[str, Field(pattern=r"^(champion|latest|v\d{4,})$")]
Tolerance = Annotated[float, Field(ge=0, le=1)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Hours = Annotated[float, Field(gt=0)]
Images = Annotated[list[str], Field(min_length=1)]
Models = Annotated[list[SingleModel], Field(min_length=1)]
Scalings = Annotated[list[Scaling], Field(min_length=1)]
LearningRates = Annotated[list[Annotated[float, Field(gt=0)]], AfterValidator(unset_when_empty)] | SkipJsonSchema[None]

DESCRIPTIONS = {
    "model": "The study's CNN: baseline (one conv block), batchnorm (with batch normalization) or deeper (three conv "
    "layers); or improved (augmentation, batch normalization, dropout, a decaying learning rate: over 99.5% on the test "
    "set); or ensemble (the averaged softmax of `members` models of kind `member_model`; finalize and retrain only).",
    "models": "The CNNs to compare (baseline, batchnorm, deeper, improved).",
    "members": "model=ensemble only: how many models it averages, each trained on every training image with its own "
    "seed (seed + 1, seed + 2, ...), in parallel single-thread processes on the CPU cores.",
    "member_model": "model=ensemble only: the CNN each member is. epochs and learning_rate apply to every member; "
    "empty, they are this model's own.",
    "folds": "Cross-validation folds (KFold, shuffled with the seed).",
    "epochs": "Passes over the training images per model. 0: the model's own, 10 (the study's) or 15 (improved).",
    "batch_size": "Images per SGD step.",
    "learning_rate": "SGD learning rate (momentum 0.9); improved starts at it and decays to 0 along a cosine. "
    "0: the model's own, 0.01 (the study's) or 0.05 (improved).",
    "learning_rates": "SGD learning rates to compare. None: each model's own.",
    "scaling": "unit: pixels/255 (the study's); center: minus the mean pixel; standardize: zero mean, unit "
    "variance. Statistics come from training images only.",
    "scalings": "Pixel scalings to compare (unit, center, standardize).",
    "limit": "Use a stratified subset of this many training images (at least 10), for quick runs. 0: all of them.",
    "seed": "Seed for the folds, the subset and weight initialization.",
    "workers": "Folds trained in parallel. 0: the fewest processes that finish the folds soonest on the CPU "
    "cores (5 folds on 2 cores: 3, each with one TensorFlow thread).",
    "runner": "process: each fold in its own process (robust for TensorFlow); thread: threads of the flow's process; "
    "dask: a Dask cluster (dask_address), else a LocalCluster of worker processes.",
    "dask_address": "Scheduler of an existing Dask cluster, e.g. tcp://host:8786 (runner=dask only). Its workers need "
    "this project installed and must reach the Prefect API and the array cache (MNIST_CACHE_URL). Empty: a "
    "LocalCluster of `workers` processes.",
    "retries": "Times a failed fold is trained again within the run (training is deterministic, so off by default).",
    "data_dir": "Folder with the four MNIST IDX files (.gz or raw) or mnist.npz. Empty: $MNIST_DATA_DIR, else download.",
    "output_dir": "Where results are written. Empty: `artifacts/runs/<flow>-<timestamp>/`.",
    "h5": "Also save the model as final_model.h5, the study's format.",
    "new_data": "Also train on the labeled-data store's examples (validated first), except the held-out fifth "
    "that tests the model on users' digits.",
    "min_accuracy": "Reject the new version if its MNIST test accuracy is below this (a fraction), whatever the "
    "champion's.",
    "approval": "auto: the gate decides; always: a person approves or rejects every version that passes the gate, "
    "in the run's Resume form in the Prefect UI; borderline: only when MNIST's test set and the users' digits "
    "disagree, or the margin is within the tolerance. Needs a Prefect server.",
    "approval_timeout_hours": "Hours to wait for a person's decision; then the version is rejected with no decision.",
    "force": "Train and judge a new version even when the data and training parameters equal the champion's.",
    "model_version": "Registered model to use: champion, latest or a version such as v0003.",
    "tolerance": "Promote the new version if its test accuracy is at least the champion's minus this (a fraction).",
    "images": "Image files (PNG, JPEG, BMP, GIF) or folders of them.",
}


def run_name(template: str) -> Callable[[], str]:
    """A flow's `flow_run_name`: `template` filled with the run's parameters, defaults included, where a
    list stands for its length (`"predict-{images}images"` names a run on three files `predict-3images`)."""

    def name() -> str:
        context = FlowRunContext.get()
        defaults = {name: value.default for name, value in inspect.signature(context.flow.fn).parameters.items()}
        values = {**defaults, **context.parameters}
        return template.format_map({name: len(v) if isinstance(v, list) else v for name, v in values.items()})

    return name


def passed_on(flow, parameters: dict[str, Any]) -> dict[str, Any]:
    """Those of a run's `parameters` that `flow` takes too: what a flow passes on to the flows it runs."""
    names = inspect.signature(flow.fn).parameters
    return {name: value for name, value in parameters.items() if name in names}


# Form titles that the name alone would not make clear ("Data dir", "H5").
TITLES = {
    "data_dir": "MNIST folder",
    "output_dir": "Output folder",
    "h5": "Also save final_model.h5",
    "new_data": "Also train on the new data",
}


def title(name: str) -> str:
    return TITLES.get(name, name.replace("_", " ").capitalize())


def described(summary: str) -> Callable:
    """Give a flow function a Google-style docstring: `summary`, then its parameters' descriptions; and
    each parameter a title (Prefect titles the UI's form fields by the raw names otherwise)."""

    def decorate(function: Callable) -> Callable:
        names = inspect.signature(function).parameters
        function.__doc__ = f"{summary}\n\nArgs:\n" + "".join(f"    {name}: {DESCRIPTIONS[name]}\n" for name in names)
        for name in names:
            titled = Field(json_schema_extra={"title": title(name)})
            function.__annotations__[name] = Annotated[function.__annotations__[name], titled]
        return function

    return decorate
