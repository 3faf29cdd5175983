"""One fold's training under TensorFlow settings, and what a fold process costs to start.

    MNIST_DATA_DIR=... .venv/bin/python bench/fold_knobs.py [--repeats 2]

Each setting trains fold 1 of the 5-fold split (48,000 images, 1 epoch, baseline, batch 32) in a
fresh process and reports model.fit's wall and CPU seconds: CPU seconds are steadier than wall
seconds when other processes share the cores. Settings: TensorFlow threads (1, 2), XLA
(jit_compile=True; Keras's "auto" leaves it off on this CPU), a tf.data pipeline with prefetch instead of arrays,
and arrays copied out of a memory-mapped .npy instead of out of memory. Then the import times of
Prefect and TensorFlow, which every fold process pays once. Prints a Markdown table.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import conditions, run_measured

SETTINGS = {
    "1 thread, as in the flow's fold processes (jit_compile auto: no XLA on this CPU)": {"threads": 1},
    "1 thread, XLA (jit_compile=True)": {"threads": 1, "jit": True},
    "1 thread, tf.data + prefetch": {"threads": 1, "tfdata": True},
    "1 thread, rows copied out of a memory-mapped .npy": {"threads": 1, "mmap": True},
    "2 threads (TensorFlow's default on 2 cores)": {"threads": 2},
}


def one_fold(threads: int, data_dir: str, jit: bool | str = "auto", tfdata: bool = False, mmap: bool = False) -> None:
    from mnist_pipeline.parallel import configure_tensorflow_threads

    configure_tensorflow_threads(threads)
    import keras
    import numpy as np
    import tensorflow as tf

    from mnist_pipeline.arrays import save_array
    from mnist_pipeline.mnist import read_directory
    from mnist_pipeline.models import build_model
    from mnist_pipeline.splits import kfold_indices

    data = read_directory(Path(data_dir))
    images = (data.train_images[..., np.newaxis] / 255).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[data.train_labels]
    if mmap:
        images = save_array(images, tempfile.mkdtemp()).open()
    train, validation = kfold_indices(len(images), 5, seed=1)[0]
    keras.utils.set_random_seed(2)
    model = build_model("baseline")
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    x, y = images[train], labels[train]
    if tfdata:
        dataset = (
            tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=2).batch(32).prefetch(tf.data.AUTOTUNE)
        )
        history = model.fit(dataset, epochs=1, validation_data=(images[validation], labels[validation]), verbose=0)
    else:
        history = model.fit(
            x, y, epochs=1, batch_size=32, validation_data=(images[validation], labels[validation]), verbose=0
        )
    print(
        json.dumps(
            {
                "wall": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
                "accuracy": history.history["val_accuracy"][-1],
            }
        )
    )


def import_seconds(module: str) -> float:
    return run_measured([sys.executable, "-c", f"import {module}"]).wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.one:
        return one_fold(data_dir=arguments.data_dir, **json.loads(arguments.one))
    if not arguments.data_dir:
        parser.error("set MNIST_DATA_DIR or --data-dir to a folder with the MNIST files")

    results: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    before = conditions()
    for _ in range(arguments.repeats):  # settings interleaved, so that each sees the same load
        for name, setting in SETTINGS.items():
            run = run_measured(
                [sys.executable, __file__, "--data-dir", arguments.data_dir, "--one", json.dumps(setting)]
            )
            results[name].append(json.loads(run.stdout.strip().splitlines()[-1]))
    rows = [
        f"Before: {before}. After: {conditions()}.",
        "",
        "| setting | fit wall (s) | fit CPU (s) | validation accuracy |",
        "|---|---|---|---|",
    ]
    for name, runs in results.items():
        walls = " / ".join(f"{run['wall']:.1f}" for run in runs)
        cpus = " / ".join(f"{run['cpu']:.1f}" for run in runs)
        rows.append(f"| {name} | {walls} | {cpus} | {runs[0]['accuracy']:.4f} |")
    rows += ["", "| a fold process imports | seconds |", "|---|---|"]
    for module in ("prefect", "tensorflow", "keras"):
        rows.append(f"| {module} | {' / '.join(f'{import_seconds(module):.1f}' for _ in range(arguments.repeats))} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
