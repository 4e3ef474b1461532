"""Audit 6 (data/preprocess.py): the small helpers the loaders build on, against values worked
out by hand: how many bad values are said to be where, which numbers a loader option accepts,
the sliding windows at their edges, frame indices of an empty or reversed span, JPEG names,
cut at a negative start, resampling in both directions and min-max statistics of no windows."""
import numpy as np
import pytest

from dcatkit.data import preprocess as P


def test_require_finite_counts_the_bad_values_and_names_the_first_counted_from_one():
    """Two NaNs in a (3, 4) table, the first at row 2, column 3 (counted from 1): the message
    says 2 values and (2, 3)."""
    x = np.ones((3, 4))
    x[1, 2] = x[2, 0] = np.nan
    with pytest.raises(P.UnreadableFile, match=r"2 empty, NaN or infinite value\(s\), the first at "
                                               r"\(row, column\) \(2, 3\)"):
        P.require_finite("t.csv", x)


@pytest.mark.parametrize("value", [0, 0.0, True, -1])
def test_check_positive_refuses_zero_and_bools(value):
    """A loader option that must be > 0 refuses 0 and -1, and True (a bool, not a number)."""
    with pytest.raises(ValueError, match="must be a number > 0"):
        P.check_positive("window", value)


def test_window_starts_at_the_edges():
    """A recording exactly one window long holds one window (start 0); a stride of 0 is refused."""
    assert P.window_starts(8, 8, 4).tolist() == [0]
    assert P.window_starts(7, 8, 4).tolist() == []
    assert P.window_starts(16, 8, 4).tolist() == [0, 4, 8]
    with pytest.raises(ValueError, match="window and stride must be >= 1"):
        P.window_starts(16, 8, 0)


def test_uniform_indices_of_an_empty_span_and_at_the_last_frame():
    """An empty or reversed span ([5, 5), [5, 3)) is read as [5, 6): every index 5, never frames
    before the start; a span past the end is clipped to the last frame (n_total - 1), never to
    n_total."""
    assert P.uniform_indices(5, 5, 3, 10).tolist() == [5, 5, 5]
    assert P.uniform_indices(5, 3, 2, 10).tolist() == [5, 5]
    assert P.uniform_indices(8, 12, 4, 10).tolist() == [8, 9, 9, 9]


def test_jpeg_frames_named_jpeg_are_listed(tmp_path):
    """Both extensions, .jpg and .jpeg, of both naming schemes are frames, in number order."""
    for name in ("2.jpeg", "10.jpg", "1.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in P.list_jpeg_frames(tmp_path)] == ["1.JPG", "2.jpeg", "10.jpg"]


def test_a_folder_of_two_frame_schemes_or_a_frame_number_twice_is_refused(tmp_path):
    """Both schemes in one folder (two extractions: 000001.jpg from 1, img_000000.jpg from 0) were
    sorted together and interleaved, 8 frames for 4; one frame number under two extensions likewise.
    Either is refused, naming what was found; one scheme alone reads as before."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    for k in range(4):
        (a / f"{k + 1:06d}.jpg").write_bytes(b"")
        (a / f"img_{k:06d}.jpg").write_bytes(b"")
        (c / f"img_{k:06d}.jpg").write_bytes(b"")
    (b / "000001.jpg").write_bytes(b"")
    (b / "000001.jpeg").write_bytes(b"")
    with pytest.raises(P.UnreadableFile, match=r"frames of both naming schemes \(\S+ and \S+\): two extractions"):
        P.list_jpeg_frames(a)
    with pytest.raises(P.UnreadableFile, match=r"frame number given twice \(000001.jpeg and 000001.jpg\)"):
        P.list_jpeg_frames(b)
    assert [p.name for p in P.list_jpeg_frames(c)] == [f"img_{k:06d}.jpg" for k in range(4)]


def test_cut_at_a_negative_start_reads_from_the_beginning():
    """A window starting before the recording reads it from sample 0 (padded at the end), not
    the recording's tail."""
    wave = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(P.cut(wave, -2, 3), [0, 1, 2])
    np.testing.assert_array_equal(P.cut(wave, 3, 4), [3, 4, 0, 0])


def test_resample_down_changes_the_length():
    """Resampling from 16 kHz to 8 kHz halves the number of samples (only an equal rate is left
    as it is)."""
    wave = np.sin(np.linspace(0, 20, 1600)).astype(np.float32)
    assert len(P.resample(wave, 16000, 8000)) == 800
    assert len(P.resample(wave, 8000, 16000)) == 3200
    assert P.resample(wave, 8000, 8000) is wave


def test_minmax_stats_of_no_windows_is_an_error():
    """Statistics of zero training windows are refused (numpy would fail with a reduction error
    or give empty bounds)."""
    with pytest.raises(ValueError, match="N >= 1"):
        P.minmax_stats(np.zeros((0, 3, 8), np.float32))
    lo, hi = P.minmax_stats(np.array([[[1.0, -2.0], [3.0, 4.0]], [[0.5, 7.0], [2.0, 2.0]]]))
    assert lo.tolist() == [-2.0, 2.0] and hi.tolist() == [7.0, 4.0]
