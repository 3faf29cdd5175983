"""A custom run started from the deployment's page in the Prefect UI, in headless Chromium.
Screenshots go to artifacts/e2e/ (or $MNIST_ARTIFACTS_DIR/e2e/)."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def choose(page, parameter: str, value: str) -> None:
    """Pick `value` in an enum parameter's dropdown."""
    page.get_by_label(f"Select {parameter}").click()
    page.get_by_role("option", name=value, exact=True).click()
    expect(page.get_by_label(f"Select {parameter}")).to_have_text(value)


def test_custom_run_from_the_ui_dialog(stack, browser, screenshots):
    deployment = stack.deployment("cross-validate")
    runs_before = {flow_run.id for flow_run in stack.flow_runs(deployment.id)}
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    created = []
    page.on(
        "request", lambda request: created.append(request.url) if request.url.endswith("/create_flow_run") else None
    )
    page.goto(stack.url)  # the server's default UI (V2 since Prefect 3.9)
    page.get_by_role("link", name="Deployments", exact=True).click()
    # the deployment's link, not its flow's of the same name
    page.locator(f"a[href*='/deployments/deployment/{deployment.id}']").first.click()
    expect(page).to_have_url(re.compile(rf"/deployments/deployment/{deployment.id}"))
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Custom run").click()

    folds = page.get_by_label("Folds (Optional)")
    expect(folds).to_be_visible()
    # fields titled for people, not by the parameters' raw names
    labels = [" ".join(label.split()) for label in page.locator("label").all_inner_texts()]
    for title in ("Model", "Folds", "Batch size", "Learning rate", "Dask address", "MNIST folder", "Output folder"):
        assert f"{title} (Optional)" in labels, labels
    assert not [label for label in labels if "_" in label], labels
    # optional parameters are plain fields with a default that says "not set": no X/None toggles
    expect(page.get_by_role("tab", name="None", exact=True)).to_have_count(0)
    expect(page.get_by_text("Property is type")).to_have_count(0)
    expect(page.get_by_label("Epochs (Optional)")).to_have_value("0")

    folds.fill("1")
    page.get_by_role("button", name="Submit").click()
    assert folds.evaluate("input => input.validity.rangeUnderflow"), "the form should refuse folds=1"
    page.wait_for_timeout(500)  # the browser's message fades in
    page.screenshot(path=screenshots / "custom-run-refused.png")
    assert created == [] and len(stack.flow_runs(deployment.id)) == len(runs_before)

    folds.fill("2")
    page.get_by_label("Epochs (Optional)").fill("1")
    page.get_by_label("Limit (Optional)").fill("300")
    choose(page, "model", "baseline")
    choose(page, "scaling", "center")
    page.screenshot(path=screenshots / "custom-run-form.png", full_page=True)
    page.get_by_role("button", name="Submit").click()
    # back from the form once the run is created; a loaded machine can take longer than expect's 5 s
    expect(page).to_have_url(re.compile(rf"/deployments/deployment/{deployment.id}(\?.*)?$"), timeout=30_000)
    assert len(created) == 1

    [flow_run] = [flow_run for flow_run in stack.flow_runs(deployment.id) if flow_run.id not in runs_before]
    flow_run = stack.wait_for_final_state(flow_run.id)
    assert flow_run.name == "cv-baseline-2folds"  # the form's random name, replaced as the run starts
    assert flow_run.state.is_completed(), f"{flow_run.state}\n" + stack.log_tail("worker")
    expected = {"model": "baseline", "folds": 2, "epochs": 1, "limit": 300, "scaling": "center"}
    assert {name: flow_run.parameters[name] for name in expected} == expected

    page.reload()
    page.locator(f"a[href*='/runs/flow-run/{flow_run.id}']").first.click()  # other tests' runs share its name
    expect(page).to_have_url(re.compile(rf"/runs/flow-run/{flow_run.id}"))
    expect(page.get_by_text("Completed", exact=True).first).to_be_visible()
    page.get_by_role("tablist").get_by_text("Artifacts", exact=True).click()
    grid = page.get_by_test_id("flow-run-artifacts-grid")
    for key in ("cross-validation-summary", "cross-validation-folds"):
        expect(grid.get_by_text(key, exact=True)).to_be_visible()
    expect(grid.get_by_text(re.compile(r"^mean accuracy \d+\.\d{3}%$"))).to_be_visible()
    expect(page.locator("canvas").first).to_be_visible()
    page.wait_for_timeout(1000)  # the run graph draws
    page.screenshot(path=screenshots / "run-artifacts.png")

    with stack.client() as client:
        [summary] = [
            a for a in client.read_artifacts() if a.flow_run_id == flow_run.id and a.key == "cross-validation-summary"
        ]
    grid.get_by_text("cross-validation-summary", exact=True).click()  # this run's version of the artifact
    expect(page).to_have_url(re.compile(rf"/artifacts/artifact/{summary.id}"))
    expect(page.get_by_role("heading", name="Cross-validation of baseline")).to_be_visible()
    figures = page.locator("img[src^='data:image/png;base64,']")
    expect(figures).to_have_count(2)
    assert all(width > 0 for width in figures.evaluate_all("images => images.map(image => image.naturalWidth)"))
    page.screenshot(path=screenshots / "summary-artifact.png", full_page=True)
    page.close()
