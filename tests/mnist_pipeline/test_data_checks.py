import io

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline import data_checks
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.images import digit_from_bytes
from mnist_pipeline.mnist import read_directory
from tests.conftest import SUBSET_DIR


@pytest.fixture(scope="module")
def subset():
    return read_directory(SUBSET_DIR)


@pytest.fixture(scope="module")
def test_images(subset):
    return subset.test_images


@pytest.fixture(scope="module")
def guard(test_images):
    return data_checks.LeakageGuard(test_images)


def encoded(image: np.ndarray, image_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def shifted(image: np.ndarray, down: int, right: int) -> np.ndarray:
    return np.roll(image, (down, right), axis=(0, 1))  # MNIST's border is blank: nothing wraps around


def test_the_prepared_test_images_are_computed_once_per_test_set_then_read(artifacts_dir, test_images, monkeypatch):
    computed = data_checks.known_test_images(test_images)
    assert computed.digests == data_checks.test_image_digests(test_images)
    assert len(list((artifacts_dir / "test-digests").iterdir())) == 1

    def computing_again(images):
        raise AssertionError("the prepared images were computed again")

    with monkeypatch.context() as patch:
        patch.setattr(data_checks, "prepared_test_images", computing_again)
        assert data_checks.known_test_images(test_images).digests == computed.digests
        with pytest.raises(AssertionError, match="computed again"):  # another test set has its own file
            data_checks.known_test_images(test_images[:50])
    assert data_checks.known_test_images(test_images[:50]).digests == data_checks.test_image_digests(test_images[:50])
    assert len(list((artifacts_dir / "test-digests").iterdir())) == 2


def test_an_artifacts_folder_that_cannot_hold_the_digests_is_named_in_one_line(tmp_path, monkeypatch, test_images):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "a-file"))
    with pytest.raises(data_checks.PipelineError, match=r"^MNIST_ARTIFACTS_DIR .*a-file: cannot save digests in it"):
        data_checks.known_test_images(test_images[:5])


NEAR_COPIES = {
    "jpeg quality 75": lambda image, rng: digit_from_bytes(encoded(image, "JPEG", quality=75)),
    "shifted a pixel, as a file": lambda image, rng: digit_from_bytes(encoded(shifted(image, 1, 0))),
    "shifted a pixel, as an array": lambda image, rng: shifted(image, 0, -1),
    "shifted two pixels, as an array": lambda image, rng: shifted(image, -1, 2),
    "noise of sigma 10": lambda image, rng: np.uint8(np.clip(np.round(image + rng.normal(0, 10, image.shape)), 0, 255)),
}


@pytest.mark.parametrize("make", NEAR_COPIES.values(), ids=NEAR_COPIES.keys())
def test_near_copies_of_test_images_are_refused(make, guard, test_images):
    rng = np.random.default_rng(0)
    for image in test_images[:20]:
        copy = make(image, rng)
        reason = guard.refusal(copy, data_checks._sha256(copy))  # a shifted file is prepared into an exact copy
        assert reason is not None and "copy of an MNIST test image" in reason
        assert "storing it would leak the test set into training" in reason


def test_exact_copies_keep_their_own_message(guard, test_images):
    for image in (test_images[3], digit_from_bytes(encoded(test_images[3]))):
        assert guard.refusal(image, data_checks._sha256(image)) == (
            "a copy of an MNIST test image: storing it would leak the test set into training"
        )


def test_digits_that_are_not_copies_are_accepted(guard, subset):
    """MNIST's training digits are other people's digits: none of the subset's 1,000 is refused as a copy."""
    prepared = [digit_from_bytes(encoded(image)) for image in subset.train_images[:200]]
    for image in [*subset.train_images, *prepared]:
        assert guard.refusal(image, data_checks._sha256(image)) is None


def test_the_store_refuses_a_near_copy_and_validation_counts_them(tmp_path, guard, subset):
    store = DataStore(tmp_path / "data", forbidden=guard)
    near = digit_from_bytes(encoded(subset.test_images[0], "JPEG", quality=75))
    with pytest.raises(data_checks.ExampleRefused, match="a near-copy of an MNIST test image"):
        store.add(near, 7, "feedback")
    assert store.add(subset.train_images[0], 5, "feedback")["outcome"] == "added"
    images = np.stack([subset.test_images[1], near, shifted(subset.test_images[2], 1, 1), subset.train_images[0]])
    findings = data_checks.validate_examples(images, np.array([2, 7, 1, 5]), 0, guard, subset.train_labels)
    [leak] = [finding for finding in findings if finding.check == "MNIST test images"]
    assert leak == ("MNIST test images", False, True, "1 copies of MNIST test images and 2 near-copies")
    assert data_checks.blocking_reason(findings).startswith("new data refused (MNIST test images: 1 copies")


def test_one_check_takes_a_few_milliseconds_against_10000_test_images(subset):
    import time

    guard = data_checks.LeakageGuard(np.tile(subset.test_images, (50, 1, 1))[:10_000], np.zeros((0, 28, 28), np.uint8))
    image = subset.train_images[0]
    guard.similarity(image[None])
    start = time.process_time()
    for _ in range(20):
        guard.similarity(image[None])
    assert (time.process_time() - start) / 20 < 0.02
