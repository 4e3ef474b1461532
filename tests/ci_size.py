"""The CI size of a notebook or README command: the parameters tests inject so a run takes seconds.

Only sizes change (samples, video size, epochs); every other parameter keeps its default, so
the code path is the one a user runs. Used by test_notebooks.py (papermill -p), test_browser.py
(papermill --prepare-only, then JupyterLab) and test_readme.py (README commands).
"""
DATA = {"n_samples": 96, "frame_size": 16, "n_frames": 4}   # synthetic data: 96 recordings, 16 px x 4 frames
TRAIN = {"epochs": 1, "source_epochs": 1}                    # one epoch per model


def papermill_args(params: dict) -> list[str]:
    """``{"epochs": 1}`` -> ``["-p", "epochs", "1"]``."""
    return [a for k, v in params.items() for a in ("-p", k, str(v))]
