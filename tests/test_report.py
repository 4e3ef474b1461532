"""dcatkit.report against hand-computed values."""
import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from dcatkit import report
from dcatkit.data.dataset import PairedDataset, Splits

# rows = true class, columns = predicted
CONF_A = np.array([[3, 1, 0],
                   [2, 2, 0],
                   [0, 1, 4]])
CONF_B = np.array([[4, 0, 0],
                   [1, 1, 2],
                   [0, 0, 5]])
CLASSES = ["a", "b", "c"]


def test_per_class_f1_by_hand():
    # class a: TP 3, FP 2, FN 1 -> 6/9; b: TP 2, FP 2, FN 2 -> 4/8; c: TP 4, FP 0, FN 1 -> 8/9
    assert report.per_class_f1(CONF_A) == pytest.approx([6 / 9, 4 / 8, 8 / 9])
    # a: TP 4, FP 1, FN 0 -> 8/9; b: TP 1, FP 0, FN 3 -> 2/5; c: TP 5, FP 2, FN 0 -> 10/12
    assert report.per_class_f1(CONF_B) == pytest.approx([8 / 9, 2 / 5, 10 / 12])


def test_per_class_f1_absent_class_is_zero():
    c = np.array([[2, 0, 0], [0, 0, 0], [1, 0, 0]])   # class b never true nor predicted; c never right
    assert report.per_class_f1(c) == pytest.approx([4 / 5, 0.0, 0.0])


def test_per_class_f1_matches_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    conf = pd.crosstab(pd.Categorical(y, range(5)), pd.Categorical(p, range(5)), dropna=False).to_numpy()
    assert report.per_class_f1(conf) == pytest.approx(f1_score(y, p, average=None, labels=range(5)))


def test_per_class_change():
    df = report.per_class_change(CONF_A, CONF_B, CLASSES)
    assert list(df.index) == ["a", "c", "b"]                         # sorted by gain: +2/9, -1/18, -1/10
    assert df.loc["a", "delta_f1"] == pytest.approx(8 / 9 - 6 / 9)
    assert df.loc["b", "delta_f1"] == pytest.approx(2 / 5 - 4 / 8)
    assert df.loc["c", "delta_f1"] == pytest.approx(10 / 12 - 8 / 9)
    assert df["support"].tolist() == [4, 5, 4]
    with pytest.raises(ValueError, match="same test set"):
        report.per_class_change(CONF_A, CONF_A.T, CLASSES)


def test_pair_changes():
    df = report.pair_changes(CONF_A, CONF_B, CLASSES)
    # {a,b}: 1+2=3 -> 0+1=1 (fewer, -2); {a,c}: 0 -> 0 (left out); {b,c}: 0+1=1 -> 2+0=2 (more, +1)
    assert df[["class_a", "class_b", "confused_baseline", "confused_dcat", "change", "direction"]].values.tolist() == [
        ["a", "b", 3, 1, -2, "fewer"], ["b", "c", 1, 2, 1, "more"]]
    assert "verdict" not in df          # a one-run count of test samples is no verdict (audit F10)
    same = report.pair_changes(np.array([[2, 1], [0, 2]]), np.array([[2, 0], [1, 2]]), ["x", "y"])
    assert same[["change", "direction"]].values.tolist() == [[0, "same"]]      # 1 confusion each way round


def test_flips():
    y = np.array([0, 0, 1, 1, 2])
    pa = np.array([0, 1, 1, 0, 2])      # right, wrong, right, wrong, right
    pb = np.array([0, 0, 0, 1, 1])      # right, right, wrong, right, wrong
    f = report.flips(y, pa, pb)
    assert f == {"both_right": 1, "fixed": 2, "broke": 2, "both_wrong": 0, "n": 5}
    assert (f["fixed"] - f["broke"]) / f["n"] == pytest.approx((pb == y).mean() - (pa == y).mean())


def _splits():
    def ds(labels, subjects):
        n = len(labels)
        return PairedDataset({"imu": np.zeros((n, 6, 8), np.float32)}, labels, ["x", "y", "z"], subjects,
                             [f"s{i}" for i in range(n)])
    return Splits(ds([0, 0, 1], [1, 1, 2]), ds([1], [3]), ds([0, 2], [4, 1]))


def test_class_and_subject_counts():
    c = report.class_counts(_splits())
    assert list(c.index) == ["x", "y", "z"]
    assert c.values.tolist() == [[2, 0, 1, 3], [1, 1, 0, 2], [0, 0, 1, 1]]
    s = report.subject_counts(_splits())
    assert s.loc[1].tolist() == [2, 0, 1, 3] and s.loc[3].tolist() == [0, 1, 0, 1]
    assert s["total"].sum() == 6


def _grid():
    rows = []
    for seed, base, l1, l01, n1 in ((0, 0.5, 0.4, 0.6, 0.45), (1, 0.7, 0.4, 0.8, 0.65)):
        rows += [{"variant": "baseline", "lam": math.nan, "seed": seed, "f1": base},
                 {"variant": "D-CAT (MCMA)", "lam": 1.0, "seed": seed, "f1": l1},    # lam 1 listed before 0.1
                 {"variant": "D-CAT (MCMA)", "lam": 0.1, "seed": seed, "f1": l01},
                 {"variant": "No MCMA", "lam": 1.0, "seed": seed, "f1": n1}]
    df = pd.DataFrame(rows).assign(dataset="synthetic", modality="imu")
    for m in ("accuracy", "precision", "recall"):
        df[m] = df["f1"] + 0.1
    return df


def test_ablation_summary_and_table():
    s = report.ablation_summary(_grid())
    keys = [(k[2], None if pd.isna(k[3]) else k[3]) for k in s.index]
    assert keys == [("baseline", None), ("D-CAT (MCMA)", 0.1), ("D-CAT (MCMA)", 1.0), ("No MCMA", 1.0)]
    assert s["f1"].tolist() == pytest.approx([0.6, 0.7, 0.4, 0.55])
    assert s["f1_std"].tolist() == pytest.approx([math.sqrt(0.02), math.sqrt(0.02), 0.0, math.sqrt(0.02)])
    assert s["n_seeds"].tolist() == [2, 2, 2, 2]
    t = report.ablation_table(_grid())
    assert list(t.columns) == ["Accuracy", "Recall", "Precision", "F1-Score", "seeds"]   # Table IV order
    assert t.index.names == ["Dataset", "Modality", "Variant", "λ"]
    assert [k[3] for k in t.index] == ["—", "0.1", "1", "1"]
    assert t["F1-Score"].tolist() == ["0.600 ± 0.141", "0.700 ± 0.141", "0.400 ± 0.000", "0.550 ± 0.141"]
    assert t["Accuracy"].iloc[0] == "0.700 ± 0.141"
    one = report.ablation_table(_grid()[lambda d: d.seed == 0])
    assert one["F1-Score"].tolist() == ["0.500", "0.600", "0.400", "0.450"]      # one seed: no ± part


def test_ablation_summary_puts_a_missing_lambda_first_within_its_variant():
    """Within a variant, the row without a lambda (NaN) comes first, then lambdas ascending."""
    df = pd.DataFrame({"dataset": "d", "modality": "imu", "variant": "v", "lam": [1.0, math.nan, 0.1],
                       "accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": [0.3, 0.1, 0.2]})
    s = report.ablation_summary(df)
    assert s["f1"].tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_best_lambda():
    b = report.best_lambda(_grid())
    assert b.loc["D-CAT (MCMA)", "best_lam"] == 0.1
    assert b.loc["D-CAT (MCMA)", "f1"] == pytest.approx(0.7)
    assert b.loc["D-CAT (MCMA)", "delta"] == pytest.approx(0.1)
    assert b.loc["D-CAT (MCMA)", "seeds_beating_baseline"] == 2       # 0.6 > 0.5 and 0.8 > 0.7
    assert b.loc["No MCMA", "seeds_beating_baseline"] == 0            # 0.45 < 0.5, 0.65 < 0.7
    assert b.loc["No MCMA", "delta"] == pytest.approx(-0.05)
    tied = _grid()
    tied.loc[(tied.variant == "No MCMA") & (tied.seed == 0), "f1"] = 0.5            # = the seed's baseline
    assert report.best_lambda(tied).loc["No MCMA", "seeds_beating_baseline"] == 0  # a tie is no win
    # two grids in one table (papermill results concatenated): a variant's seed would pair with the other
    # grid's baseline (and count a seed twice), so it is refused, naming the column that tells them apart
    two = pd.concat([_grid(), _grid().assign(dataset="other", f1=lambda d: d.f1 + 0.3)], ignore_index=True)
    with pytest.raises(ValueError, match=r"the baseline has seed\(s\) \[0, 1\] more than once: best_lambda "
                                         r"reads one grid; these rows differ in \['dataset'\]"):
        report.best_lambda(two)
    doubled = pd.concat([_grid(), _grid()[lambda d: d.variant == "No MCMA"]], ignore_index=True)
    with pytest.raises(ValueError, match=r"variant 'No MCMA' at lam 1.0 has seed\(s\) \[0, 1\] more than once"):
        report.best_lambda(doubled)


def test_best_lambda_compares_lambdas_on_the_seeds_they_share():
    """Seeds 2 and 3 did not finish at lambda 1: its mean was over seeds {0, 1}, lambda 0.1's over
    {0..3} and the baseline's over {0..3}, so lambda 1 "won" on easier seeds and the delta paired
    nothing. Now every mean is over the seeds all lambdas and the baseline share, with a warning."""
    rows = [dict(variant="baseline", lam=math.nan, seed=s, f1=f) for s, f in enumerate([0.5, 0.6, 0.7, 0.8])]
    rows += [dict(variant="dcat", lam=1.0, seed=s, f1=f) for s, f in enumerate([0.52, 0.61])]
    rows += [dict(variant="dcat", lam=0.1, seed=s, f1=f) for s, f in enumerate([0.55, 0.60, 0.30, 0.30])]
    with pytest.warns(UserWarning, match=r"variant 'dcat' is compared over the seeds every lambda and the baseline "
                                         r"share, \[0, 1\]; seed\(s\) \[2, 3\] left out \(lam 1 lacks \[2, 3\]\)"):
        b = report.best_lambda(pd.DataFrame(rows)).loc["dcat"]
    assert b["best_lam"] == 0.1 and b["seeds"] == 2                  # all seeds: lambda 1 (0.565 > 0.4375)
    assert b["f1"] == pytest.approx(0.575) and b["baseline_f1"] == pytest.approx(0.55)
    assert b["delta"] == pytest.approx(0.025)                        # all seeds: 0.565 - 0.65 = -0.085
    assert b["seeds_beating_baseline"] == 1
    apart = [dict(variant="baseline", lam=math.nan, seed=0, f1=0.5), dict(variant="dcat", lam=1.0, seed=1, f1=0.6)]
    with pytest.raises(ValueError, match=r"variant 'dcat': no seed was run at every lambda and for the baseline "
                                         r"\(baseline \[0\], lam 1: \[1\]\)"):
        report.best_lambda(pd.DataFrame(apart))


def test_describe_change():
    t = pd.DataFrame({"f1": [0.5, 0.6, 0.4996, 0.4, 0.8146, 0.8154]},
                     index=["base", "up", "same", "down", "b2", "r2"])
    lines = report.describe_change(t, "base", ["up", "same", "down"]).splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["up", "same", "down"]
    # the difference of the numbers as shown: 0.815 vs 0.815 is +0.000 (unrounded: +0.0008, "+0.001")
    assert "f1 0.815 vs b2 0.815, difference +0.000 " in report.describe_change(t, "b2", ["r2"])
    assert "f1 0.600 vs base 0.500, difference +0.100" in lines[0]
    assert "difference +0.000 " in lines[1]                # -0.0004 shows no sign it cannot support
    assert "difference -0.100" in lines[2]
    # one seed per run: the line never reads a direction into the difference
    for ln in lines:
        assert not any(w in ln for w in ("higher", "lower", "better", "worse", "about the same"))


def test_signed_never_shows_minus_zero():
    from dcatkit.stats import signed
    assert signed(-0.0004) == "+0.000" and signed(-0.0006) == "-0.001" and signed(0.0125, 2) == "+0.01"
    assert signed(-0.002, 2) == "+0.00" and signed(0.03) == "+0.030"


def test_results_roundtrip(tmp_path):
    table = pd.DataFrame({"modality": ["imu", "imu"], "f1": [0.5, math.nan]},
                         index=pd.Index(["baseline", "D-CAT"], name="run"))
    df = report.tidy(table, lam=0.1, seeds=[0, 1])
    assert df.columns.tolist() == ["run", "modality", "f1", "lam", "seeds"]
    assert df["seeds"].iloc[0] == "[0, 1]"
    files = report.write_results(df, tmp_path / "sub", "res", params={"lam": 0.1, "root": tmp_path})
    back = report.read_results(files["csv"])
    assert back["run"].tolist() == ["baseline", "D-CAT"] and back["lam"].tolist() == [0.1, 0.1]
    assert back["f1"].iloc[0] == 0.5 and math.isnan(back["f1"].iloc[1])
    blob = json.loads(files["json"].read_text())
    assert blob["params"] == {"lam": 0.1, "root": str(tmp_path)}
    assert blob["rows"][1]["f1"] is None                                # NaN -> null, valid JSON
    assert report.read_results(files["json"])["run"].tolist() == ["baseline", "D-CAT"]
    with pytest.raises(ValueError, match=".csv or .json"):
        report.read_results(tmp_path / "x.txt")


def test_latest_results_and_main(tmp_path, capsys):
    t = pd.DataFrame({"run": ["a", "b"], "f1": [0.25, 0.75], "delta_f1": [0.0, 0.5]})
    old = report.write_results(t, tmp_path, "old")["csv"]
    new = report.write_results(t.assign(f1=[0.1, 0.2]), tmp_path / "deeper", "new")["csv"]
    os.utime(old, (1, 1))
    assert report.latest_results(tmp_path) == new
    assert report.main([str(tmp_path / "deeper")]) == 0
    out = capsys.readouterr().out
    assert "new.csv" in out and "0.200" in out
    assert report.main([str(old)]) == 0
    assert "0.750" in capsys.readouterr().out


def test_main_prints_every_table_of_a_folder_each_formatted_for_what_it_holds(tmp_path, capsys):
    """The issue: `make demo` printed only the newest CSV (notebook 03's Theorem 4.1 table) as a
    metrics table: 'Empty DataFrame'. Every table is printed, each in its own form."""
    metrics = pd.DataFrame({"run": ["imu baseline", "D-CAT", "No MCMA"], "modality": "imu",
                            "f1": [0.8151, 0.8162, 0.7853], "delta_f1": [0.0, 0.0011, -0.0298]})
    fits = pd.DataFrame({"model": ["D-CAT", "baseline"], "what": ["keys", "keys"], "r2_heldout": [0.854, 0.063],
                         "r2_shuffled": [0.817, 0.05]})
    report.write_results(metrics, tmp_path, "transfer-synthetic-id")
    newest = report.write_results(fits, tmp_path, "theorem41-synthetic-id")["csv"]
    os.utime(newest, (2e9, 2e9))
    assert report.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Empty DataFrame" not in out and out.index("transfer-synthetic-id.csv") < out.index("theorem41")
    for row, f1 in (("imu baseline", "0.815"), ("D-CAT", "0.816"), ("No MCMA", "0.785")):
        assert any(line.split()[:len(row.split())] == row.split() and f1 in line for line in out.splitlines())
    assert "r2_heldout" in out and "0.854" in out and "env_" not in out
    assert report.main([str(tmp_path), "transfer-*"]) == 0                 # the one the demo names
    out = capsys.readouterr().out
    assert "transfer-synthetic-id.csv" in out and "theorem41" not in out
    # --latest (what `make demo` passes): only the newest table the pattern picks, not earlier demos'
    again = report.write_results(metrics.assign(f1=[0.5, 0.6, 0.7]), tmp_path, "transfer-synthetic-id-later")["csv"]
    os.utime(again, (2e9 + 1, 2e9 + 1))
    assert report.main([str(tmp_path), "transfer-*", "--latest"]) == 0
    out = capsys.readouterr().out
    assert "transfer-synthetic-id-later.csv" in out and "transfer-synthetic-id.csv" not in out and "0.700" in out
    assert report.main([str(tmp_path), "transfer-*"]) == 0                 # without it: both, oldest first
    out = capsys.readouterr().out
    assert out.index("transfer-synthetic-id.csv") < out.index("transfer-synthetic-id-later.csv")
    assert report.main([str(tmp_path), "nothing-*"]) == 2
    assert "no results tables matching 'nothing-*.csv'" in capsys.readouterr().err
    # not a results file, an empty one, a pattern with a file: status 2 and the reason, no traceback
    (tmp_path / "v.pt").write_bytes(b"x")
    (tmp_path / "empty.csv").write_text("")
    for bad, says in (([str(tmp_path / "v.pt")], "expected a .csv or .json"),
                      ([str(tmp_path / "empty.csv")], "dcatkit.report: "),
                      ([str(again), "transfer-*"], "picks files of a folder")):
        assert report.main(bad) == 2
        assert says in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="run the notebook first"):
        report.latest_results(tmp_path / "empty")


def test_results_carry_the_environment(tmp_path):
    from dcatkit import provenance

    t = pd.DataFrame({"run": ["a", "b"], "f1": [0.25, 0.75]})
    files = report.write_results(t, tmp_path, "res", params={"seed": 0})
    env = provenance.environment()
    blob = json.loads(files["json"].read_text())
    assert blob["environment"] == env and blob["rows"][0]["env_torch"] == env["torch"]
    back = report.read_results(files["csv"])
    assert back["env_dcatkit"].tolist() == [env["dcatkit"]] * 2 and back["f1"].tolist() == [0.25, 0.75]
    # the machine too: a CPU run's numbers depend on the CPU (RESULTS.md, "Run to run")
    assert back["env_cpu"].tolist() == [env["cpu"]] * 2 and back["env_cpu_capability"].tolist() == [env["cpu_capability"]] * 2
    # rows read back from an older file keep the environment they were made in
    old = back.assign(env_torch="0.0-old")
    again = report.read_results(report.write_results(old, tmp_path, "again")["csv"])
    assert again["env_torch"].tolist() == ["0.0-old"] * 2
    # a field older rows never stored stays empty: it is not this machine's
    older = report.read_results(report.write_results(old.drop(columns=["env_cpu", "env_cpu_capability"]),
                                                     tmp_path, "older")["csv"])
    assert older["env_cpu"].isna().all() and older["env_cpu_capability"].isna().all()
    assert older["env_torch"].tolist() == ["0.0-old"] * 2
    assert "env_" not in report.format_results(back)


def test_results_record_the_device_the_runs_used_not_the_machines_default(tmp_path, monkeypatch):
    """On a CUDA machine a run made with device="cpu" was recorded as a CUDA run with the GPU's name
    (write_results took provenance.environment(), whose default is CUDA whenever it exists).
    ``device=`` records the device the run was given, resolved ("auto": CUDA there)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)            # a CUDA machine (mocked)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA H100 80GB HBM3")
    t = pd.DataFrame({"run": ["a"], "f1": [0.5]})
    for device, want, name in (("cpu", "cpu", None), ("auto", "cuda", "NVIDIA H100 80GB HBM3"),
                               ("cuda:0", "cuda:0", "NVIDIA H100 80GB HBM3")):
        files = report.write_results(t, tmp_path, f"res-{device}", device=device)
        row = report.read_results(files["json"]).iloc[0]
        env = json.loads(files["json"].read_text())["environment"]
        assert (row["env_device"], row["env_device_name"]) == (want, name), device
        assert (env["device"], env["device_name"]) == (want, name), device
    with pytest.raises(ValueError, match="env= .* or device= .*not both"):
        report.write_results(t, tmp_path, "both", env={"device": "cuda"}, device="cpu")


@pytest.mark.parametrize("name", ["01_preprocessing", "02_unimodal", "03_transfer", "04_lambda_ablation",
                                  "05_confusion_analysis"])
def test_notebooks_say_which_device_their_results_came_from(name):
    """Every results file a notebook writes records its device (``device=``; 01 trains nothing:
    "cpu"), not the machine's default."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parent.parent / "notebooks" / f"{name}.py").read_text())
    calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
             and c.func.attr == "write_results"]
    assert calls, f"{name} writes no results file"
    for c in calls:
        kw = {k.arg for k in c.keywords}
        assert "device" in kw or "env" in kw, f"{name}, line {c.lineno}: write_results without device= (or env=)"


def test_an_interrupted_write_leaves_the_old_results_whole(tmp_path, monkeypatch):
    """The .csv (what the report command and latest_results read) and the .json are each
    written to a temp file and moved into place: a write killed half-way leaves the previous
    file as it was, and no temp file behind."""
    old = pd.DataFrame({"run": ["a", "b"], "f1": [0.5, 0.6]})
    paths = report.write_results(old, tmp_path, "results", env={"dcatkit": "x"})
    before = {k: p.read_bytes() for k, p in paths.items()}
    real = pd.DataFrame.to_csv

    def killed(self, f, **kw):
        real(self.iloc[:1], f, **kw)                       # half the rows are out ...
        raise KeyboardInterrupt                            # ... when the process is stopped

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        report.write_results(pd.DataFrame({"run": list("abcd"), "f1": [0.1] * 4}), tmp_path, "results",
                             env={"dcatkit": "x"})
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]


def test_atomic_writes_give_files_a_plain_files_permissions(tmp_path):
    """Results tables, run records and checkpoints are written to a temp file and moved into place;
    mkstemp makes that file 0600, which os.replace keeps, so a shared results folder's group could
    not read them. They now get 0666 less the umask, as a plain open() gives."""
    import os

    from dcatkit.checkpoint import save_checkpoint
    from dcatkit.model import build_model
    from dcatkit.presets import get_preset
    from dcatkit.runner import _write_json

    old = os.umask(0o022)
    try:
        paths = report.write_results(pd.DataFrame({"run": ["a"], "f1": [0.5]}), tmp_path, "results", env={})
        _write_json(tmp_path / "runs" / "r.json", {"x": 1})
        model = build_model("imu", 3, (6, 32), get_preset("synthetic", "imu"))
        ck = save_checkpoint(tmp_path / "m.pt", model, {"modality": "imu"})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (paths["csv"], paths["json"], tmp_path / "runs" / "r.json",
                                                         ck, plain)}
    assert set(modes.values()) == {0o644}, modes


def test_format_table_shows_no_minus_zero():
    """notebook 03's table printed delta_f1 "-0.000" beside a sentence saying "+0.000"."""
    from dcatkit.experiment import format_table

    t = pd.DataFrame({"delta_f1": [-0.0004, 0.0004, -0.0006, float("nan")]}, index=list("abcd"))
    assert format_table(t).split()[1:] == ["a", "0.000", "b", "0.000", "c", "-0.001", "d", "NaN"]


def test_format_table_shows_differences_of_the_shown_numbers():
    """A reader subtracting two printed numbers gets the printed difference: notebook 03 showed
    r2 0.509, r2_shuffled 0.414 and a gain of 0.096 (unrounded, 0.0955), and delta_f1 0.172 for
    0.986 - 0.815 where notebook 02, from the same models, says 0.171. The stored values keep
    every digit."""
    from dcatkit.experiment import format_table, metrics_table

    r2 = pd.DataFrame({"r2": [0.5094, 0.0634], "r2_shuffled": [0.4136, 0.0601]})
    r2["r2_gain"] = r2["r2"] - r2["r2_shuffled"]
    rows = [line.split() for line in format_table(r2, diffs={"r2_gain": ("r2", "r2_shuffled")},
                                                    index=False).splitlines()]
    assert rows == [["r2", "r2_shuffled", "r2_gain"], ["0.509", "0.414", "0.095"], ["0.063", "0.060", "0.003"]]
    assert r2["r2_gain"].round(4).tolist() == [0.0958, 0.0033]             # the frame itself is untouched

    class R:                                                               # metrics_table's delta_* columns
        def __init__(self, name, f1):
            self.name, self.modality, self.test = name, "imu", {m: f1 for m in ("accuracy", "precision",
                                                                                  "recall", "f1")}
    table = metrics_table([R("src", 0.98640), R("base", 0.81460), R("dcat", 0.81540)], baseline="base")
    shown = {line.split()[0]: line.split() for line in format_table(table).splitlines()[2:]}
    assert shown["src"][-1] == "0.171" and shown["dcat"][-1] == "0.000"  # 0.986 - 0.815; 0.815 - 0.815
    assert round(table.loc["src", "delta_f1"], 4) == 0.1718 and round(table.loc["dcat", "delta_f1"], 4) == 0.0008
    with pytest.raises(ValueError, match=r"diffs names columns \['nope'\]"):
        format_table(r2, diffs={"r2_gain": ("r2", "nope")})


def test_the_demos_std_table_shows_each_std_as_computed():
    """The demo's "std over seeds" table: delta_f1_std beside f1_std is the std of the paired
    differences, not a difference of two columns (it printed round(f1_std) - round(f1_std -
    delta_f1_std): 0.050 for 0.0493); with one seed no spread was measured: NaN, not 0.000."""
    from dcatkit.experiment import format_table, metrics_table, summarise_seeds

    class R:
        def __init__(self, name, f1):
            self.name, self.modality, self.test = name, "imu", {m: f1 for m in ("accuracy", "precision",
                                                                                  "recall", "f1")}
    seeds = [(0.70, 0.76), (0.73, 0.70), (0.76, 0.74)]
    tables = [metrics_table([R("base", b), R("dcat", d)], baseline="base") for b, d in seeds]
    summary = summarise_seeds(tables)
    assert summary.loc["dcat", "delta_f1_std"] == pytest.approx(np.std([0.06, -0.03, -0.02], ddof=1))  # 0.0493
    shown = format_table(summary[["f1_std", "delta_f1_std"]]).splitlines()[-1].split()
    assert shown == ["dcat", "0.031", "0.049"]
    one = summarise_seeds(tables[:1])
    assert np.isnan(one.loc["dcat", "f1_std"]) and format_table(one[["f1_std"]]).split()[-1] == "NaN"
