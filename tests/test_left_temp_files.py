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
