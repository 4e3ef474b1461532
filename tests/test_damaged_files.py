"""Files on disk that are not what their writer writes (empty, cut short, of another shape):
each reader names the file and what it expected, never a KeyError deep in a table nor a
silent wrong read."""
import json
from pathlib import Path

import pandas as pd
import pytest

from dcatkit.runner import read_run, read_sweep, run_grid, run_key


def toy(seed):
    return {"f1": seed + 0.5}


@pytest.mark.parametrize("text", ["[]", "null", "5", '{"params": {"seed": 0}}',
                                  '{"params": {"seed": 0}, "result": 3, "wall_s": 1.0}',
                                  '{"params": {"seed": 0}, "result": {"f1": 0.5}}'])
def test_a_run_record_of_another_shape_is_named(tmp_path, text):
    """Valid JSON that is no run record: read_run, gathering and read_sweep name the file and
    what a record holds (they raised AttributeError 'list' object has no attribute 'get',
    KeyError 'result' or 'wall_s')."""
    p = {"seed": 0}
    path = tmp_path / "runs" / f"{run_key(p)}.json"
    path.parent.mkdir()
    path.write_text(text)
    for read in (lambda: read_run(tmp_path, p), lambda: read_sweep(tmp_path),
                 lambda: run_grid(toy, [p], tmp_path, read_only=True, progress=False)):
        with pytest.raises(ValueError, match=rf"{path.name} is not a run record \(expected a JSON object with "
                                             r"'params' and 'result' objects and 'wall_s' seconds; found"):
            read()


def test_a_whole_run_record_still_reads_back(tmp_path):
    p = {"seed": 1}
    run_grid(toy, [p], tmp_path, workers=0, progress=False)
    assert read_run(tmp_path, p)["result"] == {"f1": 1.5}
    assert read_sweep(tmp_path)["f1"].tolist() == [1.5]


def test_a_results_table_cut_short_or_empty_is_named_not_read(tmp_path):
    """A results .csv cut inside its last row was read with the cut number (f1 0.2 for 0.25) and NaN
    after it; an empty one was pandas' 'No columns to parse from file', naming no file."""
    from dcatkit import report

    path = report.write_results(pd.DataFrame({"run": ["a", "b"], "f1": [0.5, 0.25]}), tmp_path, "r",
                                {"seed": 0}, env={})["csv"]
    whole = path.read_text()
    assert report.read_results(path)["f1"].tolist() == [0.5, 0.25]            # a whole table reads as before
    cut = tmp_path / "cut.csv"
    cut.write_text(whole[:whole.index("0.25") + 3])                            # "...,b,0.2"
    with pytest.raises(ValueError, match=r"cut\.csv is not a whole results table: its last row does not end "
                                         r"with a newline \(cut short\)"):
        report.read_results(cut)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv is not a whole results table: it is empty"):
        report.read_results(tmp_path / "empty.csv")


@pytest.mark.parametrize("change", [{"arrays": []}, {"arrays": {"imu": 5}}, {"arrays": {"imu": {"dtype": "float16"}}},
                                    {"arrays": {"imu": {"dtype": "floatX", "shape": [6, 2, 3]}}}, {"labels": 3},
                                    {"report": None}])
def test_a_window_cache_meta_file_of_another_shape_is_named(tmp_path, change):
    """Valid JSON whose fields have other types: the window cache named meta.json for a missing key,
    and raised AttributeError, TypeError or KeyError 'shape' for these."""
    import numpy as np

    from dcatkit.data import cache as C

    def decode(rec):
        return {"arrays": {"imu": np.full((2, 2, 3), rec, np.float32)}, "labels": [rec % 2, 1],
                "subjects": [rec, rec], "ids": [f"{rec}#0", f"{rec}#1"], "groups": [str(rec)] * 2}

    def collect():
        return C.collect("toy", [0, 1, 2], decode, classes=["a", "b"], settings={"v": 1}, cache_dir=tmp_path,
                         progress=False)
    meta_path = Path(collect().report["cache"]) / "meta.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), **change}))
    with pytest.raises(ValueError, match=r"meta\.json is not the meta data of a window cache .*: the cache folder "
                                         r".* is damaged .*delete"):
        collect()


@pytest.mark.parametrize("change", [{"shapes": []}, {"ids": 3}, {"shapes": {"v": [4, 2, 8]}}, {"fields": 5},
                                    {"ids": ["a", "b", "c"]}])
def test_a_source_cache_meta_file_of_another_shape_is_named(tmp_path, change):
    """Valid JSON whose fields have other types or sizes: it raised TypeError or KeyError 'k'."""
    import numpy as np

    from dcatkit.frozen_source import SourceCache

    for f, shape in (("k", (4, 2, 8)), ("v", (4, 2, 8))):
        np.save(tmp_path / f"{f}.npy", np.zeros(shape, np.float16))
    np.save(tmp_path / "correct.npy", np.ones(4, bool))
    meta = {"ids": ["a", "b", "c", "d"], "modality": "video", "fields": ["k", "v"],
            "shapes": {"k": [4, 2, 8], "v": [4, 2, 8]}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert len(SourceCache(tmp_path, "video")) == 4                  # as written: read
    (tmp_path / "meta.json").write_text(json.dumps({**meta, **change}))
    with pytest.raises(ValueError, match=r"meta\.json is not a source cache's meta data \(keys fields, ids, shapes"
                                         r": a list of fields, each with a shape of one row per id\); delete"):
        SourceCache(tmp_path, "video")


def test_a_figure_save_cut_short_keeps_the_figure_that_was_there(tmp_path, monkeypatch):
    """plots.save wrote straight into <name>.png: a run stopped mid-save left half a PNG there,
    replacing the last good figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dcatkit import plots

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    path = plots.save(fig, tmp_path, "f")
    good = path.read_bytes()
    assert good.startswith(b"\x89PNG")
    real = type(fig).savefig

    def cut_short(self, fname, **kw):
        import io

        buf = io.BytesIO()
        real(self, buf, **kw)
        target = open(fname, "wb") if isinstance(fname, (str, Path)) else fname
        target.write(buf.getvalue()[:100])                    # the first bytes, then the process stops
        target.flush()
        raise KeyboardInterrupt
    monkeypatch.setattr(type(fig), "savefig", cut_short)
    with pytest.raises(KeyboardInterrupt):
        plots.save(fig, tmp_path, "f")
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]
    plt.close(fig)


def test_a_checkpoint_whose_meta_is_no_dict_is_named(tmp_path):
    """A checkpoint dict whose meta is None raised AttributeError 'NoneType' object has no attribute 'get'."""
    import torch

    from dcatkit.checkpoint import load_checkpoint

    torch.save({"state_dict": {}, "config": {}, "meta": None}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"m\.pt is not a dcatkit checkpoint: expected keys state_dict, config, "
                                         r"meta \(a dict\)"):
        load_checkpoint(tmp_path / "m.pt")


@pytest.mark.parametrize("train", ["a", 5, None])
def test_a_split_file_whose_part_is_no_list_is_named(tmp_path, train):
    """A part given as a string was read letter by letter ("ab" placed recordings 'a' and 'b'); a
    number raised TypeError 'int' object is not iterable."""
    from dcatkit.data.splits import read_split_file

    f = tmp_path / "split.json"
    f.write_text(json.dumps({"kind": "id", "train": ["a"], "val": ["b"], "test": ["c", "d"]}))
    assert read_split_file(f, ["a", "b", "c", "d"], "id")[0][0]["train"] == ["a"]      # as written: read
    f.write_text(json.dumps({"kind": "id", "train": train, "val": ["b"], "test": ["c", "d"]}))
    with pytest.raises(ValueError, match=r"split\.json is not a split \(a JSON object with lists \['train', 'val', "
                                         r"'test'\], or 'folds' of them\).*delete it to make a new split"):
        read_split_file(f, ["a", "b", "c", "d"], "id")
