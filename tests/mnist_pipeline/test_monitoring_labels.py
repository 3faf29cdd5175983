"""Labels joined to the answers they judge, by the version they name or by the prediction's id."""

from mnist_pipeline.monitoring.labels import labeled_answers


def record(prediction_id, label, predicted=None, version=None, time=1.0):
    return {"prediction_id": prediction_id, "label": label, "predicted": predicted, "version": version, "time": time}


def test_labels_count_for_the_version_they_name_or_the_logged_prediction_they_judge():
    records = [
        record("a", 7, predicted=1, version="v0002", time=5.0),  # names the version: its own answer
        record("b", 3, predicted=3, version="v0001"),  # another version's answer
        record("c", 4),  # no version: joined by id to a logged prediction
        record("d", 5),  # no version, and no logged prediction: cannot be judged
    ]
    joined = labeled_answers("v0002", {"c": 9, "a": 0}, records)
    assert joined.answered.tolist() == [1, 9] and joined.labels.tolist() == [7, 4]
    assert joined.times.tolist() == [5.0, 1.0]
    assert labeled_answers("v0002", {}, []).labels.shape == (0,)
