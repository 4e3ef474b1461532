"""A killed run resumed by other training code (another dcatkit version or commit) says so:
its first epochs are the old code's, the rest the new code's, and its checkpoint names the
new code only."""
import warnings

import pytest
import torch

from dcatkit import provenance, train
from resume_worker import run


def killed_after_epoch_1(folder, monkeypatch):
    real = train._save_state

    def save(path, state):
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        real(path, state)
    monkeypatch.setattr(train, "_save_state", save)
    with pytest.raises(KeyboardInterrupt):
        run(folder, epochs=2)
    monkeypatch.undo()
    return folder / "target.pt.state"


def test_a_state_saved_by_other_code_is_resumed_with_a_warning_naming_both(tmp_path, monkeypatch):
    state_file = killed_after_epoch_1(tmp_path, monkeypatch)
    state = torch.load(state_file, weights_only=True)
    assert state["code"] == provenance.code_version()           # the state records the code that saved it
    state["code"] = {"dcatkit": "0.0.1", "git_commit": None}
    torch.save(state, state_file)
    with pytest.warns(UserWarning, match=r"target\.pt\.state was saved by other code \(dcatkit 0\.0\.1 at None; "
                                         r"this is dcatkit .*\): the resumed run trains its first 1 epoch\(s\) as "
                                         "that code did"):
        run(tmp_path, epochs=2, resume=True)


def test_a_state_of_this_code_or_of_unknown_code_resumes_without_a_warning(tmp_path, monkeypatch):
    for code in (..., None):                    # ...: as saved; None: a state saved before states recorded it
        state_file = killed_after_epoch_1(tmp_path, monkeypatch)
        if code is None:
            state = torch.load(state_file, weights_only=True)
            del state["code"]
            torch.save(state, state_file)
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*saved by other code")
            run(tmp_path, epochs=2, resume=True)
