"""Audit 6 (files.py): a temp file written by this very process is never taken for a dead
writer's."""
from dcatkit.files import writer_gone, writer_tag


def test_a_temp_file_of_this_process_is_never_a_dead_writers():
    """The writer of a temp file named with this process's tag is alive (this process): another
    run in this process (a sweep's worker thread) clearing leftovers must not remove it."""
    assert writer_gone(writer_tag() + "abc_12") is False


def test_a_write_removes_its_targets_temp_files_whose_writer_is_gone(tmp_path):
    """A write killed before its ``os.replace`` leaves ``<name>.w<host>-<pid>-<random>.tmp``; the next
    write of that target (a rerun's run record, results table, figure) removes it. It keeps the temp
    file of a live writer, one of another machine, one without the writer's tag (maybe the user's)
    and another target's."""
    import os

    from dcatkit.files import write_atomically
    from test_resume import _dead_pid

    here = writer_tag()[1:9]
    dead = tmp_path / f"results.csv.{writer_tag().replace(f'-{os.getpid()}-', f'-{_dead_pid()}-')}ab_c.tmp"
    live = tmp_path / f"results.csv.{writer_tag()}abc.tmp"
    elsewhere = tmp_path / dead.name.replace(f"w{here}-", f"w{'1' * 8 if here == '0' * 8 else '0' * 8}-")
    users = tmp_path / "results.csv.old.tmp"
    other_target = tmp_path / dead.name.replace("results.csv.", "summary.csv.")
    for p in (dead, live, elsewhere, users, other_target):
        p.write_text("a write cut short")
    write_atomically(tmp_path / "results.csv", lambda f: f.write("a,b\n"))
    assert (tmp_path / "results.csv").read_text() == "a,b\n"
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in (tmp_path / "results.csv", live, elsewhere,
                                                                  users, other_target))
