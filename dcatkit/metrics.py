"""Evaluation metrics (paper Section V-D) from scikit-learn: accuracy and macro
precision / recall / F1, plus the confusion matrix.

Macro averages are taken over the classes *present in the evaluated labels*
(scikit-learn's ``labels=``): a class with no sample in ``y_true`` has no recall
and no meaningful F1, and scoring it as 0 would pull the average down by a
number that says nothing about the model (a subject-wise test fold often lacks
some classes). Such classes are listed under ``"absent_classes"`` and a warning
names them; predictions *of* an absent class still count, as misses of the true
class (they lower its recall). The confusion matrix always covers all classes.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true, y_pred, num_classes: int) -> dict:
    """Metrics of predictions ``y_pred`` (N,) against ``y_true`` (N,), labels in [0, num_classes).

    Returns {"accuracy", "precision", "recall", "f1": float (macro over the classes present
    in ``y_true``), "confusion": (num_classes, num_classes) int array (rows = true class),
    "absent_classes": list of class ids with no sample in ``y_true``}. A class present but
    never predicted right scores 0 in the average.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0 or y_true.shape != y_pred.shape:
        raise ValueError(f"need as many predictions as labels, at least one: got y_true {y_true.shape}, "
                         f"y_pred {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"{name} holds labels in [{y.min()}, {y.max()}], expected [0, {num_classes - 1}] "
                             f"for num_classes={num_classes}")
    present = np.unique(y_true)
    absent = sorted(set(range(num_classes)) - set(present.tolist()))
    if absent:
        warnings.warn(f"{len(absent)} of {num_classes} classes have no sample in the evaluated labels "
                      f"({absent}): macro precision / recall / F1 average over the {len(present)} present "
                      "classes; the absent ones are listed under 'absent_classes'", stacklevel=2)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro",
                                                 zero_division=0)
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "precision": float(p),
            "recall": float(r), "f1": float(f),
            "confusion": confusion_matrix(y_true, y_pred, labels=np.arange(num_classes)),
            "absent_classes": absent}


def chance_recall(confusion) -> float:
    """The expected macro recall (over the classes present, as ``classification_metrics``)
    of these predictions once the test inputs are shuffled across the samples (the negative
    control, ``data.controls.break_pairing``): each present class's recall is then the share
    of predictions naming it, so this is the mean of those shares. 1 / classes only when
    every class has test samples; predictions of a class without any lower it, so two
    models' chances can differ."""
    confusion = np.asarray(confusion)
    present = confusion.sum(axis=1) > 0
    return float((confusion.sum(axis=0)[present] / confusion.sum()).sum() / present.sum())
