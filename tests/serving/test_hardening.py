"""Attacks on the service refused: too many files, writes from other web pages, foreign Host names,
overload; and the pages' security headers, /healthz without server paths."""

import asyncio
import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from mnist_pipeline import settings
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.registry import Registry
from mnist_pipeline.serving.app import create_app
from mnist_pipeline.serving.model_slot import ModelSlot
from mnist_pipeline.serving.security import InFlightLimit
from tests.serving.conftest import encoded


def client_for(artifacts, base_url: str = "http://testserver", **options) -> TestClient:
    slot = ModelSlot(Registry(artifacts / "models"), poll_seconds=3600)
    return TestClient(create_app(slot, DataStore(settings.data_store_location()), **options), base_url=base_url)


def stored() -> int:
    return DataStore(settings.data_store_location()).count()


def test_more_files_than_the_limit_are_refused_while_the_form_is_parsed(artifacts, subset):
    digit = encoded(subset.test_images[0], "PNG")
    with client_for(artifacts) as client:
        files = [("file", (f"{index}.png", digit, "image/png")) for index in range(33)]
        refused = client.post("/predict", files=files)
        assert refused.status_code == 413, refused.text
        assert refused.json() == {"error": "more than 32 files in one request (at most 32); send the others separately"}
        answers = client.post("/predict", files=files[:32])
        assert answers.status_code == 200 and len(answers.json()) == 32
    with client_for(artifacts, max_files=2) as client:
        other_names = [("x", ("a.png", digit)), ("y", ("b.png", digit)), ("file", ("c.png", digit))]
        assert "at most 2" in client.post("/predict", files=other_names).json()["error"]  # every file counts
        assert client.post("/feedback?label=7", files=other_names).status_code == 413
    assert stored() == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
    ],
)
def test_a_write_sent_by_another_web_page_is_refused_and_nothing_is_stored(artifacts, subset, headers):
    digit = encoded(subset.test_images[0], "PNG")
    with client_for(artifacts) as client:
        refused = client.post("/feedback?label=7", content=digit, headers=headers)
        assert refused.status_code == 403 and list(refused.json()) == ["error"]
        assert "another" in refused.json()["error"] and "own page" in refused.json()["error"]
        assert client.post("/predict", content=digit, headers=headers).status_code == 403
        assert client.get("/healthz", headers=headers).status_code == 200  # reading stays open
    assert stored() == 0


def test_the_own_page_and_clients_without_a_browser_may_write(artifacts, subset):
    digit = encoded(subset.test_images[0], "PNG")
    with client_for(artifacts, base_url="http://127.0.0.1:8000", allowed_hosts=["127.0.0.1"]) as client:
        same_origin = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
        assert client.post("/feedback?label=7", content=digit, headers=same_origin).status_code == 200
        typed_url = {"Sec-Fetch-Site": "none"}  # a request the user made, not a page
        assert client.post("/predict", content=digit, headers=typed_url).status_code == 200
    assert stored() == 1


def test_a_host_name_not_allowed_is_refused_against_dns_rebinding(artifacts, subset):
    digit = encoded(subset.test_images[0], "PNG")
    allowed = ["127.0.0.1", "localhost", "::1", "digits.example.org"]
    with client_for(artifacts, base_url="http://localhost:8000", allowed_hosts=allowed) as client:
        for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "DIGITS.example.org"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
        rebound = {"Host": "attacker.example:8000", "Origin": "http://attacker.example:8000"}
        refused = client.post("/feedback?label=7", content=digit, headers=rebound)
        assert refused.status_code == 400
        assert refused.json() == {"error": "host 'attacker.example' is not served here; "
                                  "serve --allowed-hosts attacker.example allows it"}  # fmt: skip
        assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400
    assert stored() == 0


def test_past_the_limit_of_requests_in_flight_the_answer_is_503_with_retry_after():
    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    async def request(limit: InFlightLimit) -> tuple[int, dict[str, str], bytes]:
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b""}

        await limit({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
        headers = {name.decode(): value.decode() for name, value in sent[0]["headers"]}
        return sent[0]["status"], headers, sent[1]["body"]

    async def scenario():
        limit = InFlightLimit(slow_app, limit=2, retry_after_seconds=3)
        first, second = asyncio.create_task(request(limit)), asyncio.create_task(request(limit))
        await asyncio.sleep(0.01)
        status, headers, body = await request(limit)
        assert (status, headers["retry-after"], limit.in_flight) == (503, "3", 2)
        assert b"busy: 2 requests in flight" in body and headers["content-type"] == "application/json"
        release.set()
        assert [(await first)[0], (await second)[0]] == [200, 200]
        assert limit.in_flight == 0 and (await request(limit))[0] == 200

    asyncio.run(scenario())


def test_pages_are_served_with_a_content_security_policy_and_nosniff(artifacts):
    with client_for(artifacts) as client:
        page, docs = client.get("/"), client.get("/docs")
        for response in (page, docs):
            policy = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
            assert "unsafe-inline" not in policy and response.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text  # the page's script is a file of the service: no inline code
        scripts = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
        hashes = {base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in scripts}
        assert len(scripts) == 1 and f"'sha256-{hashes.pop()}'" in docs.headers["content-security-policy"]
        assert "http" not in docs.text  # Swagger UI's files come from the service, not from a CDN
        for path in re.findall(r'(?:src|href)="([^"]+)"', page.text + docs.text):
            assert client.get(f"/{path}").status_code == 200, path


def test_health_names_no_path_on_the_server(artifacts, tmp_path):
    registry = Registry(artifacts / "models")
    registry.promote("v0003", "a damaged file")
    with client_for(artifacts) as client:
        health = client.get("/healthz")
        assert health.status_code == 503 and "v0003 could not be loaded" in health.json()["error"]
        assert "<registry>/v0003/model.keras is damaged" in health.json()["error"]
        assert str(tmp_path) not in health.text and "/tmp" not in health.text
    empty = tmp_path / "empty"
    with TestClient(create_app(ModelSlot(Registry(empty / "models")), DataStore(empty / "data"))) as client:
        assert client.get("/healthz").json()["error"].startswith("no champion model in <registry> yet")
        predicted = client.post("/predict", content=b"anything")
        assert predicted.status_code == 503 and str(empty) not in predicted.text
