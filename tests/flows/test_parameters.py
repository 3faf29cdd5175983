import inspect

import pydantic
import pytest

from mnist_pipeline.flows import parameters as p
from mnist_pipeline.flows.compare import compare
from mnist_pipeline.flows.cross_validate import cross_validate
from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.flows.predict import predict
from mnist_pipeline.flows.retrain import retrain
from mnist_pipeline.training_request import TrainingRequest

FLOWS = (cross_validate, compare, finalize, evaluate, retrain, predict)


@pytest.mark.parametrize(
    "kind, given, seen",
    [
        (p.Epochs, 0, None),
        (p.Epochs, 3, 3),
        (p.Epochs, None, None),
        (p.LearningRate, 0.0, None),
        (p.LearningRate, 0.05, 0.05),
        (p.Limit, 0, None),
        (p.Limit, 10, 10),
        (p.Workers, 0, None),
        (p.Folder, "", None),
        (p.Folder, "/data/mnist", "/data/mnist"),
        (p.DaskAddress, "", None),
        (p.DaskAddress, "tcp://scheduler:8786", "tcp://scheduler:8786"),
        (p.LearningRates, [], None),
        (p.LearningRates, [0.01], [0.01]),
    ],
)
def test_an_empty_value_means_not_set(kind, given, seen):
    assert pydantic.TypeAdapter(kind).validate_python(given) == seen


@pytest.mark.parametrize(
    "kind, given",
    [(p.Epochs, -1), (p.LearningRate, -0.1), (p.Limit, 5), (p.Workers, -2), (p.DaskAddress, "scheduler")],
)
def test_values_out_of_bounds_are_refused(kind, given):
    with pytest.raises(pydantic.ValidationError):
        pydantic.TypeAdapter(kind).validate_python(given)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda flow: flow.name)
def test_the_form_shows_every_parameter_as_one_plain_titled_field(flow):
    """No `anyOf` with null (the UI's X/None toggle), no null default, and a title for people."""
    for name, schema in flow.parameters.properties.items():
        assert "anyOf" not in schema and schema.get("default", "") is not None, (name, schema)
        assert schema["title"] == p.title(name) != name, (name, schema)


def test_finalize_takes_the_whole_training_request_and_only_its_folders_besides():
    assert set(inspect.signature(finalize.fn).parameters) == set(TrainingRequest.model_fields) | {
        "data_dir",
        "output_dir",
    }


def test_retrain_takes_the_training_request_but_new_data_which_it_always_trains_on():
    assert set(TrainingRequest.model_fields) - set(inspect.signature(retrain.fn).parameters) == {"new_data"}


@pytest.mark.parametrize("flow", [finalize, retrain], ids=lambda flow: flow.name)
def test_a_flow_s_defaults_are_the_request_s_defaults(flow):
    defaults = {name: parameter.default for name, parameter in inspect.signature(flow.fn).parameters.items()}
    defaults = flow.validate_parameters(defaults)  # as a run sees them: 0 and "" are None
    assert TrainingRequest.among(defaults, new_data=False) == TrainingRequest()
