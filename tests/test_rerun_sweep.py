"""A re-run papermill sweep skips finished runs unless asked to redo them (issue 12, section 3).

- ``report.find_results`` finds a results file only when it was written with exactly the
  run's parameters; a damaged file is an error naming it.
- ``report.finished_runs`` gives the runs back from their checkpoints, and refuses (None)
  when a checkpoint, a history or a run is missing, or a reloaded model does not reproduce
  its stored test metrics.
- Notebook 03 at CI size, three times into one out_dir: the second run trains nothing
  (checkpoints and results files untouched, the same table); ``-p redo True`` trains again;
  a fourth, after the frozen source was replaced under its name, trains again.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import ci_size
from helpers import TINY, tiny_splits
from dcatkit import report
from dcatkit.experiment import metrics_table, train_unimodal

REPO = Path(__file__).resolve().parent.parent
ENV = {"dcatkit": "test", "torch": "x", "device": "cpu", "device_name": "cpu", "git_commit": "0"}
PARAMS = {"lam": 0.1, "seed": 0, "epochs": None, "data": {"n_samples": 96}, "sizes": (300, 1000)}


def test_find_results_matches_exactly_the_parameters(tmp_path):
    rows = pd.DataFrame({"run": ["a", "b"], "f1": [0.5, 0.25]})
    report.write_results(rows, tmp_path, "r", params=PARAMS, env=ENV)
    got = report.find_results(tmp_path, "r", {**PARAMS, "sizes": [300, 1000]})   # a tuple is stored as a list
    assert got is not None and got["run"].tolist() == ["a", "b"] and got["f1"].tolist() == [0.5, 0.25]
    for other in ({**PARAMS, "lam": 1.0}, {**PARAMS, "data": {"n_samples": 1000}}, {**PARAMS, "epochs": 2},
                  {k: v for k, v in PARAMS.items() if k != "seed"}, {**PARAMS, "extra": 1}):
        assert report.find_results(tmp_path, "r", other) is None, other
    assert report.find_results(tmp_path, "other-stem", PARAMS) is None


def test_damaged_results_file_is_named(tmp_path):
    files = report.write_results(pd.DataFrame({"run": ["a"], "f1": [0.5]}), tmp_path, "r", params=PARAMS, env=ENV)
    text = files["json"].read_text()
    files["json"].write_text(text[: len(text) // 2])                          # an interrupted copy
    with pytest.raises(ValueError, match=r"r\.json is not a readable results file.*truncated"):
        report.find_results(tmp_path, "r", PARAMS)
    files["json"].write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"r\.json is not a results file written by"):
        report.find_results(tmp_path, "r", PARAMS)
    assert not list(tmp_path.glob("*.tmp")), "write_results left a temporary file"


def test_finished_runs_read_back_and_checked(tmp_path, capsys):
    splits = tiny_splits(48, modalities=("imu",))
    ck = tmp_path / "baseline.pt"
    run = train_unimodal(splits, "imu", preset=TINY["imu"], seed=0, checkpoint=ck, progress=False, name="base")
    table = metrics_table([run], baseline="base")
    write = lambda t, hist: report.write_results(report.tidy(t, lam=0.1), tmp_path, "r", params=PARAMS, env=ENV,
                                                 histories=hist)
    write(table, {"base": run.history})
    other = report.write_results(report.tidy(table, lam=0.5), tmp_path, "other", params=PARAMS, env=ENV)
    for f in [*(tmp_path / f"r.{e}" for e in ("csv", "json"))]:
        os.utime(f, (1, 1))                                # r written long before "other"
    got = report.finished_runs(tmp_path, "r", PARAMS, {"base": ck}, splits, device="cpu")
    assert list(got) == ["base"]
    # read back, r is the run a notebook just used: the newest results file (what `make demo` prints
    # with --latest; it printed "other" after a demo A, a demo B, then A again read back)
    assert report.latest_results(tmp_path) == tmp_path / "r.csv" and other["csv"].is_file()
    for f in other.values():
        f.unlink()
    back = got["base"]
    assert back.name == "base" and back.modality == "imu" and back.checkpoint == ck
    for m in report.METRICS:
        assert back.test[m] == run.test[m], m
    assert (back.test["confusion"] == run.test["confusion"]).all()
    pd.testing.assert_frame_equal(back.history, run.history, check_dtype=False)
    for (k, a), b in zip(run.model.state_dict().items(), back.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu()), k
    assert back.meta["best_val"]["f1"] == run.meta["best_val"]["f1"]

    # refused, with the reason: other parameters, a missing checkpoint / run / history, other stored metrics
    assert report.finished_runs(tmp_path, "r", {**PARAMS, "lam": 1.0}, {"base": ck}, splits) is None
    assert report.finished_runs(tmp_path, "r", PARAMS, {"base": tmp_path / "gone.pt"}, splits) is None
    assert "checkpoint of 'base'" in capsys.readouterr().out
    assert report.finished_runs(tmp_path, "r", PARAMS, {"base": ck, "dcat": ck}, splits) is None
    assert "no results or history of the run 'dcat'" in capsys.readouterr().out
    write(table, None)
    assert report.finished_runs(tmp_path, "r", PARAMS, {"base": ck}, splits) is None
    changed = table.copy()
    changed.loc["base", "f1"] += 0.01                    # the checkpoint no longer gives the stored results
    write(changed, {"base": run.history})
    assert report.finished_runs(tmp_path, "r", PARAMS, {"base": ck}, splits) is None
    assert "does not give the stored results (f1" in capsys.readouterr().out


def test_finished_runs_refuse_a_stored_metric_off_by_a_millionth(tmp_path, capsys):
    """A checkpoint is read back only if it gives the stored metrics to 1e-9: a stored F1 off by
    1e-6 (a checkpoint overwritten by a near-identical run) is refused like one off by 0.01,
    while the exact stored value is read back."""
    splits = tiny_splits(48, modalities=("imu",))
    ck = tmp_path / "baseline.pt"
    run = train_unimodal(splits, "imu", preset=TINY["imu"], seed=0, checkpoint=ck, progress=False, name="base")
    table = metrics_table([run], baseline="base")
    write = lambda t: report.write_results(report.tidy(t, lam=0.1), tmp_path, "r", params=PARAMS, env=ENV,
                                           histories={"base": run.history})
    write(table)
    assert list(report.finished_runs(tmp_path, "r", PARAMS, {"base": ck}, splits, device="cpu")) == ["base"]
    changed = table.copy()
    changed.loc["base", "f1"] += 1e-6
    write(changed)
    stored = report.find_results(tmp_path, "r", PARAMS).set_index("run").loc["base", "f1"]
    assert stored == pytest.approx(run.test["f1"] + 1e-6, rel=0, abs=1e-12)     # the shift is what is stored
    capsys.readouterr()
    assert report.finished_runs(tmp_path, "r", PARAMS, {"base": ck}, splits, device="cpu") is None
    assert "does not give the stored results (f1" in capsys.readouterr().out


def test_finished_runs_refuse_runs_of_another_frozen_source(tmp_path, capsys):
    """A transfer checkpoint records the frozen source it was trained from (weights and settings,
    ``experiment.source_identity``); ``finished_runs(..., source=)`` reads the runs back only for
    that source. The audit: notebook 02 re-run (another device, another machine sharing out_dir)
    retrains the source under its file name, and notebook 03 then read back D-CAT runs of the old
    source while its table's source row and Theorem 4.1 used the new one."""
    from dcatkit.checkpoint import load_checkpoint, save_checkpoint
    from dcatkit.experiment import source_identity, train_transfer

    sp = tiny_splits(48, modalities=("imu", "video"))
    ck_src = tmp_path / "source-video.pt"
    src = train_unimodal(sp, "video", preset=TINY["video"], seed=0, checkpoint=ck_src, progress=False)
    common = dict(preset=TINY["imu"], epochs=1, seed=0, device="cpu", progress=False, source_cache=False)
    cks = {"base": tmp_path / "base.pt", "dcat": tmp_path / "dcat.pt"}
    trained = [train_transfer(sp, src, "imu", method="none", monitor="dcat", checkpoint=cks["base"], name="base",
                              **common),
               train_transfer(sp, src, "imu", checkpoint=cks["dcat"], name="dcat", **common)]
    report.write_results(report.tidy(metrics_table(trained, baseline="base"), lam=0.1), tmp_path, "r",
                         params=PARAMS, env=ENV, histories={r.name: r.history for r in trained})
    for ck in cks.values():
        assert load_checkpoint(ck)[1]["source_identity"] == source_identity(src) == source_identity(ck_src)
    read = lambda source: report.finished_runs(tmp_path, "r", PARAMS, cks, sp, device="cpu",  # noqa: E731
                                               source=source)
    assert list(read(src)) == ["base", "dcat"] and list(read(ck_src)) == ["base", "dcat"]
    capsys.readouterr()

    # the source trained again under its file name: other weights, the same name
    train_unimodal(sp, "video", preset=TINY["video"], seed=1, checkpoint=ck_src, progress=False)
    assert read(ck_src) is None
    said = capsys.readouterr().out
    assert "checkpoint of 'base'" in said and "trained from another frozen source" in said and "training them" in said
    assert list(read(src)) == ["base", "dcat"]                   # the source they were trained from: read back

    # a transfer checkpoint written before the source was recorded: cannot be told apart, so trained again
    model, meta = load_checkpoint(cks["dcat"])
    del meta["source_identity"]
    save_checkpoint(cks["dcat"], model, meta)
    assert read(src) is None
    assert "'dcat'" in (said := capsys.readouterr().out) and "does not record the frozen source" in said


def test_runs_read_back_say_when_other_code_trained_them(tmp_path, capsys, monkeypatch):
    """The reload check evaluates the stored models but cannot see a change to the training code:
    runs read back that another commit or version trained come with a line naming both (the read-back
    itself stays, as in sweeps); the same code, or a commit nobody knows (a copy without .git), says
    nothing."""
    splits = tiny_splits(48, modalities=("imu",))
    ck = tmp_path / "baseline.pt"
    run = train_unimodal(splits, "imu", preset=TINY["imu"], seed=0, checkpoint=ck, progress=False, name="base")
    report.write_results(report.tidy(metrics_table([run], baseline="base"), lam=0.1), tmp_path, "r", params=PARAMS,
                         env=ENV, histories={"base": run.history})

    def read_back(now):
        monkeypatch.setattr(report, "code_version", lambda: now)
        got = report.finished_runs(tmp_path, "r", PARAMS, {"base": ck}, splits, device="cpu")
        assert list(got) == ["base"]
        return capsys.readouterr().out

    assert read_back({"dcatkit": "test", "git_commit": "0"}) == ""
    assert read_back({"dcatkit": "test", "git_commit": None}) == ""
    said = read_back({"dcatkit": "test", "git_commit": "1"})
    assert "trained by other code (dcatkit test at 0; this is dcatkit test at 1)" in said and "redo=True" in said
    assert "trained by other code (dcatkit test at 0; this is dcatkit 0.2 at 0)" in read_back(
        {"dcatkit": "0.2", "git_commit": "0"})


# --------------------------------------------------------------------------- notebook 03, run three times


def _papermill(dst: Path, out: Path, env, *extra):
    args = ci_size.papermill_args({**ci_size.DATA, **ci_size.TRAIN, "lam": 0.1, "out_dir": out,
                                   "figures_dir": out / "figures"})
    cmd = [sys.executable, "-m", "papermill", str(REPO / "notebooks" / "03_transfer.ipynb"), str(dst), "-k", "python3",
           "--no-progress-bar", *args, *extra]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"papermill 03 failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    text = "\n".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                     for c in json.loads(dst.read_text())["cells"] if c["cell_type"] == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    table = re.search(r"^ +modality +accuracy ", text, re.M)
    assert table, f"no results table in the output of {dst.name}:\n{text[-3000:]}"
    # from the table on: the table, the verdicts, L_CA per epoch (the histories), Theorem 4.1 (the models);
    # blank lines dropped: how the kernel splits a cell's prints into stream outputs varies with timing
    # lines naming the written files (a long list wraps onto lines of its own) are not results
    return text, [line for line in text[table.start():].splitlines()
                  if line.strip() and not line.startswith(("wrote", "results of these runs")) and str(out) not in line]


def _stamps(out: Path) -> dict[str, int | bytes]:
    """Each checkpoint's modification time; each results file's bytes (a read-back touches its
    time stamps on purpose, ``report.finished_runs``: it is then the newest results file)."""
    return {**{p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*.pt")},
            **{p.name: p.read_bytes() for p in (out / "03_transfer").glob("transfer-*")}}


def test_notebook_03_rerun_skips_finished_runs_and_redo_trains(tmp_path):
    env = {**os.environ, "DCATKIT_CACHE": str(tmp_path / "source_cache"), "MPLBACKEND": "Agg",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    out = tmp_path / "out"
    skipped = "trained nothing"

    first, results1 = _papermill(tmp_path / "1.ipynb", out, env)
    assert skipped not in first and "baseline (imu, Eq. 18): test F1" in first
    stamps = _stamps(out)
    assert len([n for n in stamps if n.endswith(".pt")]) == 4, stamps       # source, baseline, D-CAT, No MCMA
    assert {re.sub(r"-[0-9a-f]{10}-", "-KEY-", n) for n in stamps if n.startswith("transfer-")} == \
        {"transfer-synthetic-id-video-imu-KEY-lam0.1-seed0.csv", "transfer-synthetic-id-video-imu-KEY-lam0.1-seed0.json"}

    second, results2 = _papermill(tmp_path / "2.ipynb", out, env)
    assert skipped in second and "Eq. 18): test F1" not in second            # no training message
    assert _stamps(out) == stamps, "the re-run rewrote a checkpoint or the results file"
    assert results2 == results1 and any("baseline (measured only)" in line for line in results1)

    third, results3 = _papermill(tmp_path / "3.ipynb", out, env, "-p", "redo", "True")
    assert skipped not in third and "baseline (imu, Eq. 18): test F1" in third
    now = _stamps(out)
    retrained = [n for n in stamps if n.endswith(".pt") and now[n] != stamps[n]]
    assert len(retrained) == 3, f"redo=True must train the baseline, D-CAT and No MCMA again; rewritten: {retrained}"
    assert results3 == results1                                               # same seed on the CPU: same runs

    # the frozen source replaced under its name (notebook 02 re-run on another device or machine): the
    # runs of the old source are trained again, not read back beside the new source's row and Theorem 4.1
    from dcatkit.checkpoint import load_checkpoint, save_checkpoint

    (ck_source,) = (out / "checkpoints").glob("source-video-*.pt")
    model, meta = load_checkpoint(ck_source)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_checkpoint(ck_source, model, meta)
    fourth, _ = _papermill(tmp_path / "4.ipynb", out, env)
    # (the line saying why is cleared with the progress bars; test_finished_runs_refuse_runs_of_another_... reads it)
    assert skipped not in fourth and "baseline (imu, Eq. 18): test F1" in fourth
