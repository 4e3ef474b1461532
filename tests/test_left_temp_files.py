"""A checkpoint save cut short by a kill leaves its temp file (``files.temp_beside``) beside the
checkpoint, as large as the model: the next run of that checkpoint removes it when its writer is
gone, and keeps one a live process is writing (as it does for the resumable state's)."""
import os

from dcatkit.files import writer_tag
from resume_worker import run


def test_the_next_run_removes_a_killed_checkpoint_saves_temp_file_not_a_live_ones(tmp_path):
    dead = tmp_path / "target.pt.x1y2.tmp"                       # a save of an older dcatkit, cut short
    dead_tagged = tmp_path / "target.pt.w00000000-1-ab_c.tmp"    # another machine's writer: kept
    live = tmp_path / f"target.pt.{writer_tag()}abc.tmp"         # this process: a live writer
    other = tmp_path / "target.pt.state.zz.tmp"                  # the state's: not the checkpoint's
    for p in (dead, dead_tagged, live, other):
        p.write_bytes(b"a save cut short")
    run(tmp_path, epochs=1)
    assert (tmp_path / "target.pt").is_file()
    assert not dead.exists() and not other.exists()              # the state's own sweep removes the last
    assert dead_tagged.exists() and live.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["cache", "target.pt", dead_tagged.name, live.name])


def test_an_export_removes_the_file_a_killed_export_left_and_keeps_the_users(tmp_path):
    """deploy.export writes ``<name>.<writer><random><suffix>`` (model.pt2.w...-pid-x.pt2) and moves it
    into place: a kill before the move left that second .pt2 beside the model, never removed, which
    a ``*.pt2`` glob picks up. The next export removes it when its writer is gone; a file of the
    user's named like it without the writer's tag (model.pt2.v2.pt2) is kept."""
    from dcatkit import deploy
    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits
    from test_resume import _dead_pid

    sp = tiny_splits(32, modalities=("imu",))
    model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), TINY["imu"])
    dead = tmp_path / f"model.pt2.{writer_tag().replace(f'-{os.getpid()}-', f'-{_dead_pid()}-')}ab_c.pt2"
    live = tmp_path / f"model.pt2.{writer_tag()}abc.pt2"
    users = tmp_path / "model.pt2.v2.pt2"
    for p in (dead, live, users):
        p.write_bytes(b"an export cut short")
    deploy.export(model, tmp_path / "model.pt2", classes=sp.classes, normalization=None)
    assert sorted(os.listdir(tmp_path)) == sorted(["model.pt2", live.name, users.name])
