"""The drawing page in headless Chromium against a real `mnist-pipeline serve`."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.serving.conftest import encoded

pytestmark = pytest.mark.e2e


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
    page = browser.new_page(viewport={"width": 1000, "height": 700})
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
    page.close()
