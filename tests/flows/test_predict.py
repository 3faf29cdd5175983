import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.flows.predict import predict
from mnist_pipeline.mnist import read_directory
from tests.flows.conftest import flow_run_artifacts
from tests.prefect_homes import prefect_home


def user_renders(digit: np.ndarray, folder, name: str) -> list:
    """One real MNIST digit as people give digits: drawn dark on white, photographed, exported."""
    ink = Image.fromarray(digit)
    paper = Image.fromarray(255 - digit)
    paths = []

    canvas = Image.new("L", (300, 200), 255)  # dark ink, scaled up, off-center
    canvas.paste(paper.resize((140, 140), Image.Resampling.BICUBIC), (20, 40))
    paths.append(folder / f"{name}-inverted.png")
    canvas.save(paths[-1])

    photo = canvas.convert("RGB").point(lambda value: int(value * 0.8 + 30))  # greyish paper, JPEG artifacts
    paths.append(folder / f"{name}-photo.jpg")
    photo.save(paths[-1], quality=70)

    rgba = Image.new("RGBA", (112, 112), (0, 0, 0, 0))  # blue ink on a transparent background
    stroke = ink.resize((84, 84), Image.Resampling.BICUBIC)
    rgba.paste(Image.new("RGBA", (84, 84), (20, 40, 200, 255)), (20, 6), mask=stroke)
    paths.append(folder / f"{name}-transparent.png")
    rgba.save(paths[-1])
    return paths


def test_predict_reads_digits_as_users_give_them(registered_model, mnist_dir, tmp_path):
    summary, _, _ = registered_model
    test = read_directory(mnist_dir)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    originals = {}
    for index in range(12):
        for path in user_renders(test.test_images[index], inputs, f"{index:02d}"):
            originals[path.name] = index
    (inputs / "notes.txt").write_text("not an image, and not picked up from the folder")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    state = predict(
        images=[str(inputs), str(broken)],
        model_version=summary.version,
        output_dir=str(tmp_path / "out"),
        return_state=True,
    )
    results = state.result().predictions
    assert [r["file"] for r in results] == sorted(str(inputs / name) for name in originals) + [str(broken)]
    assert results[-1] == {"file": str(broken), "error": results[-1]["error"]} and "corrupt" in results[-1]["error"]

    import keras

    model = keras.saving.load_model(summary.model_path)
    on_originals = model.predict(test.test_images[:12, ..., None].astype(np.float32) / 255, verbose=0).argmax(axis=1)
    agree = [r["digit"] == on_originals[originals[os.path.basename(r["file"])]] for r in results[:-1]]
    assert np.mean(agree) >= 0.85, f"renders predicted like the originals in {np.mean(agree):.0%} of cases"
    for result in results[:-1]:
        assert len(result["probabilities"]) == 10 and sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert result["digit"] == int(np.argmax(result["probabilities"]))

    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved["version"] == summary.version and saved["predictions"] == results
    assert "predictions" in flow_run_artifacts(state.state_details.flow_run_id)


def test_cli_json_lists_every_file_and_fails_when_one_failed(registered_model, mnist_dir, tmp_path):
    summary, artifacts, _ = registered_model
    digit = tmp_path / "seven.png"
    Image.fromarray(255 - read_directory(mnist_dir).test_images[0]).resize((90, 90)).save(digit)
    environment = {
        **os.environ,
        "MNIST_ARTIFACTS_DIR": str(artifacts),
        "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")),
    }
    environment.pop("PREFECT_API_URL", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_pipeline.flows.cli",
            "predict",
            str(digit),
            str(tmp_path / "missing.png"),
            "--model-version",
            "latest",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=240,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    good, missing = json.loads(result.stdout)
    assert set(good) == {"file", "digit", "probabilities"} and good["file"] == str(digit)
    assert missing == {"file": str(tmp_path / "missing.png"), "error": "no such file"}
    assert "Results: " in result.stderr


def test_the_predict_command_imports_neither_scikit_learn_nor_matplotlib(registered_model, mnist_dir, tmp_path):
    """Keras imports scikit-learn for wrappers that predict never uses, and only other flows draw figures."""
    _, artifacts, _ = registered_model
    digit = tmp_path / "seven.png"
    Image.fromarray(read_directory(mnist_dir).test_images[0]).save(digit)
    script = (
        "import sys; from mnist_pipeline.flows.cli import main; "
        f"code = main(['predict', {str(digit)!r}, '--model-version', 'latest']); "
        "print(code, sorted(name for name in ('sklearn', 'scipy.stats', 'matplotlib') if name in sys.modules))"
    )
    environment = {**os.environ, "MNIST_ARTIFACTS_DIR": str(artifacts)}  # and the session's Prefect server
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=240
    )
    assert result.stdout.splitlines()[-1] == "0 []", result.stderr[-2000:]
    assert f"{digit}: 7 (p=" in result.stdout
