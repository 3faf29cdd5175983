import pytest

from mnist_pipeline import data_checks
from mnist_pipeline.mnist import read_directory
from tests.conftest import SUBSET_DIR


@pytest.fixture(scope="module")
def test_images():
    return read_directory(SUBSET_DIR).test_images


def test_the_test_images_digests_are_computed_once_per_test_set_then_read(artifacts_dir, test_images, monkeypatch):
    computed = data_checks.test_image_digests(test_images)
    assert data_checks.known_test_image_digests(test_images) == computed
    assert len(list((artifacts_dir / "test-digests").iterdir())) == 1

    def computing_again(images):
        raise AssertionError("the digests were computed again")

    with monkeypatch.context() as patch:
        patch.setattr(data_checks, "test_image_digests", computing_again)
        assert data_checks.known_test_image_digests(test_images) == computed
        with pytest.raises(AssertionError, match="computed again"):  # another test set has its own digests
            data_checks.known_test_image_digests(test_images[:50])
    assert data_checks.known_test_image_digests(test_images[:50]) == data_checks.test_image_digests(test_images[:50])
    assert len(list((artifacts_dir / "test-digests").iterdir())) == 2


def test_an_artifacts_folder_that_cannot_hold_the_digests_is_named_in_one_line(tmp_path, monkeypatch, test_images):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "a-file"))
    with pytest.raises(data_checks.PipelineError, match=r"^MNIST_ARTIFACTS_DIR .*a-file: cannot save digests in it"):
        data_checks.known_test_image_digests(test_images[:5])
