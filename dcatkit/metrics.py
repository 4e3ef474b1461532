"""Evaluation metrics (paper Section V-D) from scikit-learn: accuracy and macro
precision / recall / F1, plus the confusion matrix."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true, y_pred, num_classes: int) -> dict:
    """Returns {"accuracy", "precision", "recall", "f1", "confusion"}; macro averages
    over all ``num_classes`` classes (a class never predicted scores 0)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.arange(num_classes)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                 zero_division=0)
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "precision": float(p),
            "recall": float(r), "f1": float(f),
            "confusion": confusion_matrix(y_true, y_pred, labels=labels)}
