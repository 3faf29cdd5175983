"""Prediction speed: warm single-image latency and batch throughput of briefly trained models.

    MNIST_DATA_DIR=... .venv/bin/python bench/predict_speed.py

Speed depends on the architecture, not on the weights, so each model (baseline; deeper, the study's
final model) is trained for one epoch on 6,000 images only. TensorFlow's default threads. Latency:
median and 90th percentile of 200 warm calls on one image, through `model(x)` (eager), a
`tf.function` of it, and `model.predict`. Throughput: `model.predict` on the 10,000 test images.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import conditions


def latencies(call, image, repeats: int = 200) -> tuple[float, float]:
    """Median and 90th percentile in milliseconds, after 20 warm-up calls."""
    for _ in range(20):
        call(image)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call(image)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times), statistics.quantiles(times, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR"))
    arguments = parser.parse_args()
    if not arguments.data_dir:
        parser.error("set MNIST_DATA_DIR or --data-dir to a folder with the MNIST files")
    import keras
    import numpy as np
    import tensorflow as tf

    from mnist_pipeline.mnist import read_directory
    from mnist_pipeline.models import build_model, compile_model

    data = read_directory(Path(arguments.data_dir))
    x_train = (data.train_images[:6000, ..., np.newaxis] / 255).astype(np.float32)
    y_train = np.eye(10, dtype=np.float32)[data.train_labels[:6000]]
    x_test = (data.test_images[..., np.newaxis] / 255).astype(np.float32)
    image = x_test[:1]
    rows = [
        f"Conditions: {conditions()}.",
        "",
        "| model | test accuracy | call | latency, 1 image: median / p90 (ms) |",
        "|---|---|---|---|",
    ]
    throughput = ["", "| model | batch size | images/s |", "|---|---|---|"]
    for name in ("baseline", "deeper"):
        keras.utils.set_random_seed(1)
        model = compile_model(build_model(name))
        model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
        accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == data.test_labels))
        serve = tf.function(
            lambda x, model=model: model(x, training=False),
            input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)],
        )
        calls = {
            "model(x)": lambda x, model=model: model(x, training=False).numpy(),
            "tf.function": lambda x, serve=serve: serve(x).numpy(),
            "model.predict": lambda x, model=model: model.predict(x, verbose=0),
        }
        for label, call in calls.items():
            median, p90 = latencies(call, image, repeats=50 if label == "model.predict" else 200)
            rows.append(f"| {name} | {100 * accuracy:.2f}% | `{label}` | {median:.2f} / {p90:.2f} |")
        for batch_size in (32, 256, 1024):
            model.predict(x_test[:batch_size], batch_size=batch_size, verbose=0)
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                model.predict(x_test, batch_size=batch_size, verbose=0)
                runs.append(len(x_test) / (time.perf_counter() - started))
            throughput.append(f"| {name} | {batch_size} | {statistics.median(runs):,.0f} |")
    print("\n".join(rows + throughput))


if __name__ == "__main__":
    main()
