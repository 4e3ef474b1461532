"""Audit 6 (metrics.py): the label range refused below 0 as above, and the warning about
absent classes attributed to the caller."""
import warnings

import pytest

from dcatkit.metrics import classification_metrics


@pytest.mark.parametrize("y_true, y_pred, name", [([0, -1, 1], [0, 1, 1], "y_true"),
                                                   ([0, 1, 1], [0, -1, 1], "y_pred")])
def test_a_label_of_minus_one_is_refused(y_true, y_pred, name):
    """-1 is the kit's UNLABELED marker: an unlabeled sample (or a missing prediction) passed to
    the metrics is refused, naming the array, not scored as a class of its own or as a miss."""
    with pytest.raises(ValueError, match=rf"{name} holds labels in \[-1, 1\], expected \[0, 1\]"):
        classification_metrics(y_true, y_pred, 2)


def test_the_absent_class_warning_points_at_the_caller():
    """The warning naming classes without test samples is attributed to the line that called
    classification_metrics (stacklevel 2), not to metrics.py."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classification_metrics([0, 0, 1], [0, 1, 1], 3)              # class 2 absent
    (w,) = [w for w in caught if "no sample in the evaluated labels" in str(w.message)]
    assert w.filename == __file__, w.filename
