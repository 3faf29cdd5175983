"""Test-set metrics from predicted class probabilities."""

import numpy as np

EPSILON = 1e-7  # Keras clips probabilities the same way in categorical cross-entropy


def test_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, cross-entropy loss, per-class precision/recall/F1/support and the confusion matrix."""
    # Not at the top: importing scikit-learn takes 1.3-1.6 s of CPU that cv and predict need not pay.
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    num_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    true_probabilities = np.clip(probabilities[np.arange(len(labels)), labels], EPSILON, 1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=np.arange(num_classes), zero_division=0
    )
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": float(-np.mean(np.log(true_probabilities))),
        "per_class": [
            {"digit": digit, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
            for digit, (p, r, f, n) in enumerate(zip(precision, recall, f1, support))
        ],
        "confusion_matrix": confusion_matrix(labels, predicted, labels=np.arange(num_classes)).tolist(),
    }
