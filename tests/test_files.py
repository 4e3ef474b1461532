"""Audit 6 (files.py): a temp file written by this very process is never taken for a dead
writer's."""
from dcatkit.files import writer_gone, writer_tag


def test_a_temp_file_of_this_process_is_never_a_dead_writers():
    """The writer of a temp file named with this process's tag is alive (this process): another
    run in this process (a sweep's worker thread) clearing leftovers must not remove it."""
    assert writer_gone(writer_tag() + "abc_12") is False
