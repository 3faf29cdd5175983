"""The drawing page and the API docs in headless Chromium against one real `mnist-pipeline serve`."""

import json
import re
import shutil
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.serving.conftest import Service, encoded

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(trained_registry, mnist_dir, tmp_path_factory):
    """One service for the module's tests (a start costs seconds): only the page test writes to its store."""
    folder = tmp_path_factory.mktemp("page")
    shutil.copytree(trained_registry, folder / "artifacts" / "models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_DATA_DIR", str(mnist_dir))
        running = Service(folder / "artifacts", folder / "serve.log")
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
    page.screenshot(path=tmp_path / "page.png")
    assert_only_the_service_was_reached(page, service)  # under its policy: no inline script, no CDN
    page.close()


def test_the_api_docs_render_offline_under_their_policy(service, browser, tmp_path):
    page = watched(browser)
    response = page.goto(f"{service.url}/docs")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    expect(page.locator(".opblock")).to_have_count(4)  # Swagger UI read the schema and listed every route
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert sorted(path.replace("\u200b", "") for path in paths) == ["/", "/feedback", "/healthz", "/predict"]
    page.locator(".opblock-post", has_text="/feedback").locator(".opblock-summary").click()
    body = page.locator(".opblock-body").first
    expect(body).to_contain_text("no label, or a label that is not one digit 0-9")  # its errors and their shape
    expect(body).to_contain_text('"error": "string"')
    page.screenshot(path=tmp_path / "docs.png", full_page=True)
    assert_only_the_service_was_reached(page, service)
    page.close()
