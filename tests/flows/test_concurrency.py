from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mnist_pipeline.arrays import array_sha256
from mnist_pipeline.flows.cross_validate import cross_validate


def test_two_concurrent_runs_share_the_cache_without_corrupting_it(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    parameters = {"folds": 2, "epochs": 1, "limit": 300, "scaling": "standardize", "data_dir": str(mnist_dir)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(cross_validate, **parameters, output_dir=str(tmp_path / f"run-{i}")) for i in range(2)]
        first, second = (run.result() for run in runs)
    assert first.accuracies == second.accuracies
    arrays = sorted((artifacts_dir / "cache").iterdir())
    assert arrays and all(path.suffix == ".npy" for path in arrays), "no temporary files are left"
    for path in arrays:
        assert array_sha256(np.load(path)) == path.stem
