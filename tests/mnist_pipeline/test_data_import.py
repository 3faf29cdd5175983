import io

import pytest
from PIL import Image

from mnist_pipeline.data_import import LabelsFileError, import_folder
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.mnist import read_directory
from tests.serving.conftest import SUBSET, encoded, labeled_folder


def test_bad_rows_each_get_one_line_and_the_others_are_imported(tmp_path):
    folder = labeled_folder(
        tmp_path / "scans",
        ["0.png,7", "1.png,2", "missing.png,3", "notes.png,4", "2.png,ten", "3.png,12", ",5", "0.png,7", "1.png,9"],
    )
    store = DataStore(tmp_path / "data")
    report = import_folder(store, folder)
    assert report["outcomes"] == {"added": 2, "duplicate": 1, "conflict": 1}
    assert report["errors"] == [
        "labels.csv line 4 (missing.png): no such file",
        "labels.csv line 5 (notes.png): not an image file (expected PNG, JPEG, BMP or GIF)",
        "labels.csv line 6 (2.png): label must be one digit from 0 to 9, got 'ten'",
        "labels.csv line 7 (3.png): label must be one digit from 0 to 9, got '12'",
        "labels.csv line 8 (no file): no file named",
    ]
    summary = store.summary()
    assert summary["examples"] == 1 and summary["by_source"] == {"import:scans": 1} and len(summary["conflicts"]) == 1


def test_a_folder_without_labels_csv_or_with_other_columns_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabelsFileError, match="has no labels.csv; add one with the columns file,label"):
        import_folder(DataStore(tmp_path / "data"), tmp_path / "empty")
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "labels.csv").write_text("name,digit\na.png,1\n")
    with pytest.raises(LabelsFileError, match="must start with the header file,label"):
        import_folder(DataStore(tmp_path / "data"), folder)


def test_imported_images_are_prepared_like_predict_prepares_them(tmp_path):
    digit = read_directory(SUBSET).test_images[0]
    folder = labeled_folder(tmp_path / "big", ["0.png,7"])
    large = Image.open(io.BytesIO(encoded(digit, "PNG"))).resize((600, 600))
    large.save(folder / "0.png")
    store = DataStore(tmp_path / "data")
    import_folder(store, folder)
    from mnist_pipeline.images import load_digit

    [image], [label] = store.arrays()
    assert label == 7 and (image == load_digit(folder / "0.png")).all()


def test_rows_naming_files_outside_the_folder_are_refused_and_the_others_imported(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(encoded(read_directory(SUBSET).test_images[5], "PNG"))
    folder = labeled_folder(
        tmp_path / "scans", ["0.png,7", "../secret.png,1", f"{outside},1", "link.png,1", "sub/../1.png,2", "2.png,1"]
    )
    (folder / "link.png").symlink_to(outside)
    store = DataStore(tmp_path / "data")
    report = import_folder(store, folder)
    assert report["outcomes"] == {"added": 2, "duplicate": 0, "conflict": 0}
    refused = f"not a file in {folder}: name it by its path inside the folder, without '..'"
    assert report["errors"] == [
        f"labels.csv line 3 (../secret.png): {refused}",
        f"labels.csv line 4 ({outside}): {refused}",
        f"labels.csv line 5 (link.png): a link to {outside}, outside {folder}: copy the image into the folder "
        "instead of linking it",
        f"labels.csv line 6 (sub/../1.png): {refused}",
    ]
    assert sorted(store.arrays()[1].tolist()) == [1, 7]


def test_images_other_files_cannot_be_read_from_are_refused_per_row(tmp_path):
    """A TIFF, a PNG bomb and a 16-bit PNG among the rows: the two bad ones get their line, the rest go on."""
    import numpy as np

    folder = labeled_folder(tmp_path / "scans", ["0.png,7", "scan.tif,1", "bomb.png,1", "deep.png,2"])
    Image.open(folder / "1.png").save(folder / "scan.tif")
    Image.new("1", (6300, 6300), 1).save(folder / "bomb.png")
    ink = np.asarray(Image.open(folder / "2.png").convert("L"), np.uint16)
    Image.fromarray(np.uint16(65535 - ink * 257)).save(folder / "deep.png")
    report = import_folder(DataStore(tmp_path / "data"), folder)
    assert report["outcomes"] == {"added": 2, "duplicate": 0, "conflict": 0}
    assert report["errors"] == [
        "labels.csv line 3 (scan.tif): a TIFF image: only PNG, JPEG, BMP and GIF are read; save it as PNG or JPEG",
        "labels.csv line 4 (bomb.png): 6300x6300 pixels is too large for a digit image (at most 4,000,000 pixels, "
        "MNIST_MAX_IMAGE_PIXELS); crop or downscale it",
    ]
