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
