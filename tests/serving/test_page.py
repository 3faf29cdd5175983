"""The drawing page and the API docs in headless Chromium against one real `mnist-pipeline serve`."""

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

from mnist_pipeline.prediction_log import read_labels, read_predictions
from tests.serving.conftest import Service, encoded, free_port

pytestmark = pytest.mark.e2e
PROMETHEUS = "/usr/bin/prometheus"  # Debian's package: `make test` installs it
PROMETHEUS_CONFIG = Path(__file__).parents[2] / "deploy" / "prometheus.yml"


@pytest.fixture(scope="module")
def service(trained_registry, mnist_dir, tmp_path_factory):
    """One service for the module's tests (a start costs seconds): only the page test writes to its store."""
    folder = tmp_path_factory.mktemp("page")
    shutil.copytree(trained_registry, folder / "artifacts" / "models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_DATA_DIR", str(mnist_dir))
        running = Service(folder / "artifacts", folder / "serve.log", "--log-flush-seconds", "0.2")
    try:
        running.wait_until_up()
        yield running
    finally:
        running.stop()


def watched(browser):
    """A new page, with the URLs it requests and the Content-Security-Policy violations it reports."""
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.requested, page.violations = [], []
    page.on("request", lambda request: page.requested.append(request.url))
    page.on(
        "console", lambda message: "Content Security Policy" in message.text and page.violations.append(message.text)
    )
    return page


def assert_only_the_service_was_reached(page, service) -> None:
    service_origin = urlsplit(service.url).netloc
    elsewhere = [
        url
        for url in page.requested
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != service_origin
    ]
    assert elsewhere == [] and page.violations == [], (elsewhere, page.violations)


def stroke(page, box, points: list[tuple[float, float]]) -> None:
    """One mouse stroke through `points`, given as fractions of the canvas."""
    x, y = box["x"], box["y"]
    page.mouse.move(x + points[0][0] * box["width"], y + points[0][1] * box["height"])
    page.mouse.down()
    for px, py in points[1:]:
        page.mouse.move(x + px * box["width"], y + py * box["height"], steps=12)
    page.mouse.up()


def logged_labels(service, count: int, timeout: float = 20) -> dict:
    """The labels the service logged, once `count` are written (the log is flushed every 0.2 s here)."""
    deadline = time.monotonic() + timeout
    while len(labels := read_labels(service.env["MNIST_ARTIFACTS_DIR"], 0)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return labels


def probabilities_shown(page) -> list[float]:
    return [float(text.rstrip("%")) / 100 for text in page.locator("#bars .p").all_inner_texts()]


def test_draw_a_digit_see_the_prediction_and_send_a_correction(service, browser, subset, tmp_path):
    page = watched(browser)
    page.goto(service.url)
    canvas = page.locator("#canvas")
    box = canvas.bounding_box()
    stroke(page, box, [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)])  # a seven, in two segments
    stroke(page, box, [(0.35, 0.5), (0.65, 0.5)])  # and its bar
    expect(page.locator("body")).to_have_attribute("data-state", "ready")  # both strokes' answers are in
    expect(page.locator("#digit")).to_have_text(re.compile(r"^[0-9]$"))
    expect(page.locator("#version")).to_have_text("(model v0001)")
    expect(page.locator("#bars .bar")).to_have_count(10)
    shown = probabilities_shown(page)
    assert len(shown) == 10 and sum(shown) == pytest.approx(1, abs=0.01)
    digit = int(page.locator("#digit").inner_text())
    widths = page.locator("#bars .bar").evaluate_all("bars => bars.map(bar => bar.getBoundingClientRect().width)")
    assert widths.index(max(widths)) == digit and max(widths) > 0

    correction = 3 if digit != 3 else 8
    page.locator("#label").select_option(str(correction))
    page.get_by_role("button", name="Send correction").click()
    expect(page.locator("#status")).to_contain_text(f"stored as {correction} (added)")
    expect(page.locator("#status")).to_contain_text("the store holds 1 examples")
    summary = json.loads(service.cli("data", "--json").stdout)
    assert (summary["examples"], summary["by_label"], summary["by_source"]) == (
        1,
        {str(correction): 1},
        {"feedback": 1},
    )

    upload = tmp_path / "two.jpg"
    upload.write_bytes(encoded(subset.test_images[1], "JPEG"))
    page.locator("#file").set_input_files(upload)
    expect(page.locator("#digit")).to_have_text(re.compile(r"^[0-9]$"))
    expect(page.locator("#status")).to_have_text("")
    uploaded = int(page.locator("#digit").inner_text())
    page.get_by_role("button", name="✓ right").click()
    expect(page.locator("#status")).to_contain_text(f"confirmed as {uploaded}")
    expect(page.get_by_role("button", name="✓ right")).to_be_disabled()  # one label per answer
    summary = json.loads(service.cli("data", "--json").stdout)
    assert summary["by_source"] == {"feedback": 1, "confirmed": 1}
    labels = logged_labels(service, count=2)
    assert sorted((record["label"], record["confirmed"]) for record in labels.values()) == sorted(
        [(correction, False), (uploaded, True)]
    )
    logged, _ = read_predictions(service.env["MNIST_ARTIFACTS_DIR"], 0)
    assert set(labels) <= set(logged.ids)  # each label joins a logged answer
    page.screenshot(path=tmp_path / "page.png")
    assert_only_the_service_was_reached(page, service)  # under its policy: no inline script, no CDN
    page.close()


def test_the_api_docs_render_offline_under_their_policy(service, browser, tmp_path):
    page = watched(browser)
    response = page.goto(f"{service.url}/docs")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    expect(page.locator(".opblock")).to_have_count(5)  # Swagger UI read the schema and listed every route
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    routes = ["/", "/feedback", "/healthz", "/metrics", "/predict"]
    assert sorted(path.replace("\u200b", "") for path in paths) == routes
    page.locator(".opblock-post", has_text="/feedback").locator(".opblock-summary").click()
    body = page.locator(".opblock-body").first
    expect(body).to_contain_text("no label, or a label that is not one digit 0-9")  # its errors and their shape
    expect(body).to_contain_text('"error": "string"')
    page.screenshot(path=tmp_path / "docs.png", full_page=True)
    assert_only_the_service_was_reached(page, service)
    page.close()


def test_a_real_prometheus_scrapes_the_prediction_count(service, subset, tmp_path):
    """Debian's Prometheus with the repository's deploy/prometheus.yml, its target and interval the test's own."""
    for index in range(7):
        request = urllib.request.Request(f"{service.url}/predict", data=encoded(subset.test_images[index], "PNG"))
        urllib.request.urlopen(request, timeout=10).close()
    with urllib.request.urlopen(f"{service.url}/metrics", timeout=10) as response:
        served = sum(
            sample.value
            for family in text_string_to_metric_families(response.read().decode())
            for sample in family.samples
            if sample.name == "mnist_predictions_total"
        )
    assert served >= 7
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["scrape_configs"][0]["static_configs"] = [{"targets": [urlsplit(service.url).netloc]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    with open(tmp_path / "prometheus.log", "wb") as log:
        prometheus = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        query = urllib.parse.urlencode({"query": 'sum(mnist_predictions_total{job="mnist-serve"})'})
        deadline, found = time.monotonic() + 60, None
        while found != served and time.monotonic() < deadline:
            assert prometheus.poll() is None, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://{address}/api/v1/query?{query}", timeout=5) as response:
                    result = json.loads(response.read())["data"]["result"]
            except OSError:
                continue  # not listening yet
            found = float(result[0]["value"][1]) if result else None
        assert found == served, (tmp_path / "prometheus.log").read_text()[-2000:]
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
