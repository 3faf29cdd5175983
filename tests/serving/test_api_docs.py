"""The OpenAPI schema at /openapi.json: every route, its parameters, its bodies and its error shapes."""

import pytest
from fastapi.testclient import TestClient

from mnist_pipeline.datastore import DataStore
from mnist_pipeline.registry import Registry
from mnist_pipeline.serving.app import create_app
from mnist_pipeline.serving.model_slot import ModelSlot

ERROR = {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("no-models")
    app = create_app(ModelSlot(Registry(folder / "models")), DataStore(folder / "data"))
    return TestClient(app).get("/openapi.json").json()  # no lifespan: the schema needs no model


def answer(operation: dict, status: str) -> dict:
    return operation["responses"][status]["content"]["application/json"]["schema"]


def test_every_route_is_documented_with_its_answers_and_errors(schema):
    paths = schema["paths"]
    assert {path: sorted(methods) for path, methods in paths.items()} == {
        "/": ["get"],
        "/healthz": ["get"],
        "/predict": ["post"],
        "/feedback": ["post"],
        "/metrics": ["get"],
    }
    predict, feedback, health = paths["/predict"]["post"], paths["/feedback"]["post"], paths["/healthz"]["get"]
    assert answer(predict, "200")["anyOf"][0] == {"$ref": "#/components/schemas/Prediction"}
    assert answer(feedback, "200") == {"$ref": "#/components/schemas/Stored"}
    assert answer(health, "200") == {"$ref": "#/components/schemas/Health"}
    assert {"$ref": "#/components/schemas/Unavailable"} in answer(health, "503")["anyOf"]
    for operation, statuses in ((predict, "400 403 413 503"), (feedback, "400 401 403 413 422 429 503")):
        assert sorted(operation["responses"]) == sorted(["200", *statuses.split()])
        assert all(answer(operation, status) == ERROR for status in statuses.split())
    assert "text/html" in paths["/"]["get"]["responses"]["200"]["content"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]

    components = schema["components"]["schemas"]
    assert components["ErrorResponse"]["required"] == ["error"]
    assert components["ErrorResponse"]["properties"]["error"]["type"] == "string"
    assert set(components["Prediction"]["properties"]) == {"digit", "probabilities", "version", "prediction_id"}
    assert set(components["Stored"]["properties"]) == {"sha256", "outcome", "label", "examples", "prediction_id"}
    assert components["Stored"]["properties"]["outcome"]["enum"] == ["added", "duplicate", "conflict"]


def test_bodies_and_parameters_are_documented_although_the_service_streams_them(schema):
    predict, feedback = schema["paths"]["/predict"]["post"], schema["paths"]["/feedback"]["post"]
    for operation in (predict, feedback):
        content = operation["requestBody"]["content"]
        assert {"application/octet-stream", "image/png", "image/jpeg", "multipart/form-data"} <= set(content)
        assert content["image/png"]["schema"] == {"type": "string", "format": "binary"}
    predict_form = predict["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert predict_form["properties"]["file"]["items"]["format"] == "binary"
    feedback_form = feedback["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert feedback_form["properties"]["label"] == {"type": "integer", "minimum": 0, "maximum": 9}
    label, prediction_id, confirmed = feedback["parameters"]
    assert (prediction_id["name"], confirmed["name"], confirmed["schema"]["type"]) == (
        "prediction_id",
        "confirmed",
        "boolean",
    )
    assert {"prediction_id", "confirmed"} <= set(feedback_form["properties"])
    assert (label["name"], label["in"], label["schema"]["anyOf"][0]) == (
        "label",
        "query",
        {"type": "integer", "minimum": 0, "maximum": 9},
    )
    assert feedback["security"] == [{"HTTPBearer": []}]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
