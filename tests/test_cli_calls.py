"""What `python -m dcatkit train / transfer / demo` passes on to the package: every flag reaches
the loader and the experiment call as the value it names (the loader and the experiments are
stood in, so nothing trains), the fold a cross-validation split is asked for is the one used,
and the argument parsers refuse what they promise to."""
import argparse

import pandas as pd
import pytest

import dcatkit.__main__ as cli
from dcatkit.experiment import metrics_table


class Stop(Exception):
    """Raised by a stand-in once it has recorded its call (main lets it through)."""


@pytest.fixture
def calls(monkeypatch, tmp_path):
    monkeypatch.setenv("DCATKIT_CACHE", str(tmp_path / "cache"))
    seen = {"load": [], "train": [], "transfer": [], "compare": []}
    result = {"load": "the splits"}

    def load(name, **kw):
        seen["load"].append({"name": name, **kw})
        return result["load"]

    def record(what):
        def call(*args, **kw):
            seen[what].append((args, kw))
            raise Stop
        return call

    monkeypatch.setattr(cli, "load", load)
    monkeypatch.setattr(cli, "train_unimodal", record("train"))
    monkeypatch.setattr(cli, "train_transfer", record("transfer"))
    seen["result"] = result
    return seen


def _run(argv):
    with pytest.raises(Stop):
        cli.main(argv)


def test_train_flags_reach_the_loader_and_train_unimodal(calls, tmp_path):
    out = str(tmp_path / "m.pt")
    _run(["train", "--modality", "acc", "--epochs", "3", "--seed", "5", "--preset", "paper", "--resume",
          "--data-seed", "4", "--split", "ood", "--n-samples", "130", "--device", "cpu",
          "--data-option", "frame_size=16", "--out", out])
    assert calls["load"] == [{"name": "synthetic", "root": None, "split": "ood", "seed": 4, "n_samples": 130,
                              "frame_size": 16}]
    (args, kw), = calls["train"]
    assert args == ("the splits", "acc")
    assert {k: kw[k] for k in ("preset", "dataset", "epochs", "seed", "device", "checkpoint", "resume", "log_dir")} \
        == {"preset": "paper", "dataset": "synthetic", "epochs": 3, "seed": 5, "device": "cpu", "checkpoint": out,
            "resume": True, "log_dir": None}


def test_train_defaults_are_the_documented_ones(calls, tmp_path):
    """No flags: the ID split of data draw 0 at the simulator's size, the synthetic preset, the
    preset's epochs and seed (None), a fresh run."""
    _run(["train", "--modality", "imu", "--out", str(tmp_path / "m.pt")])
    assert calls["load"] == [{"name": "synthetic", "root": None, "split": "id", "seed": 0,
                              "n_samples": cli.DEFAULT_N_SAMPLES}]
    (args, kw), = calls["train"]
    assert (kw["preset"], kw["epochs"], kw["seed"], kw["resume"]) == ("synthetic", None, None, False)


def test_transfer_flags_reach_train_transfer(calls, tmp_path):
    out = str(tmp_path / "t.pt")
    _run(["transfer", "--source-ckpt", "v.pt", "--target", "imu", "--method", "kd", "--option", "kd_temperature=3",
          "--lam", "0.5", "--epochs", "2", "--seed", "7", "--preset", "paper", "--trust-source", "--no-mcma",
          "--data-seed", "2", "--device", "cpu", "--resume", "--out", out])
    assert calls["load"][0]["seed"] == 2
    (args, kw), = calls["transfer"]
    assert args == ("the splits", "v.pt", "imu") and kw["sources"] is None
    assert {k: kw[k] for k in ("lam", "mcma", "method", "options", "preset", "dataset", "epochs", "seed", "device",
                               "checkpoint", "resume", "trust_source")} \
        == {"lam": 0.5, "mcma": False, "method": "kd", "options": {"kd_temperature": 3}, "preset": "paper",
            "dataset": "synthetic", "epochs": 2, "seed": 7, "device": "cpu", "checkpoint": out, "resume": True,
            "trust_source": True}
    # the defaults: D-CAT with MCMA at lambda 1, no options, the preset's epochs and seed
    calls["transfer"].clear()
    _run(["transfer", "--source-ckpt", "v.pt", "--target", "imu", "--out", out])
    (args, kw), = calls["transfer"]
    assert (kw["lam"], kw["mcma"], kw["method"], kw["options"], kw["epochs"], kw["seed"], kw["trust_source"],
            kw["resume"]) == (1.0, True, "dcat", None, None, None, False, False)


def test_several_source_checkpoints_go_as_sources_in_their_order(calls, tmp_path):
    _run(["transfer", "--source-ckpt", "v.pt", "--source-ckpt", "a.pt", "--target", "imu", "--lam", "video=1",
          "--lam", "audio=0.25", "--out", str(tmp_path / "t.pt")])
    (args, kw), = calls["transfer"]
    assert args == ("the splits", None, "imu")
    assert kw["sources"] == ["v.pt", "a.pt"] and kw["lam"] == {"video": 1.0, "audio": 0.25}


def test_the_fold_asked_for_is_the_one_trained_and_a_missing_or_extra_fold_is_refused(calls, tmp_path, capsys):
    out = ["--out", str(tmp_path / "m.pt")]
    calls["result"]["load"] = ["fold 0", "fold 1", "fold 2"]
    _run(["train", "--modality", "imu", "--split", "group_kfold:3", "--fold", "2", *out])
    assert calls["load"][0]["split"] == ["group_kfold", 3] and calls["train"][0][0][0] == "fold 2"
    for fold in ([], ["--fold", "3"], ["--fold", "-1"]):
        assert cli.main(["train", "--modality", "imu", "--split", "group_kfold:3", *fold, *out]) == 2
        assert "has 3 folds: give --fold 0 .. 2" in capsys.readouterr().err, fold
    calls["result"]["load"] = "the splits"                          # a split without folds
    assert cli.main(["train", "--modality", "imu", "--split", "id", "--fold", "0", *out]) == 2
    assert "--fold 0 given, but --split id has no folds" in capsys.readouterr().err
    assert len(calls["train"]) == 1                                 # nothing else reached training


def test_demo_passes_each_seed_and_the_pair_lambda_and_preset_to_compare(calls, monkeypatch, tmp_path):
    """Each --seeds value reaches its own compare call (and its rows in results.csv), with the
    named source, target, lambda, preset and epochs."""
    from types import SimpleNamespace

    got = []

    def compare(splits, **kw):
        got.append(kw)
        m = {k: 0.5 + 0.01 * kw["seed"] for k in ("accuracy", "precision", "recall", "f1")}
        runs = [SimpleNamespace(name=n, modality="x", test=m) for n in ("src", "base")]
        return metrics_table(runs, baseline="base"), {}

    monkeypatch.setattr(cli, "compare", compare)
    out = tmp_path / "demo"
    assert cli.main(["demo", "--source", "audio", "--target", "acc", "--lam", "0.3", "--seeds", "4", "6",
                     "--preset", "paper", "--epochs-source", "2", "--epochs-target", "3", "--device", "cpu",
                     "--out", str(out)]) == 0
    assert [g["seed"] for g in got] == [4, 6]
    for g in got:
        assert {k: g[k] for k in ("source", "target", "lam", "preset", "dataset", "device", "epochs")} == \
            {"source": "audio", "target": "acc", "lam": 0.3, "preset": "paper", "dataset": "synthetic",
             "device": "cpu", "epochs": {"source": 2, "target": 3}}
        assert g["out_dir"] == out
    res = pd.read_csv(out / "results.csv")
    assert sorted(res["seed"].unique()) == [4, 6]
    assert res.set_index(["seed", "run"])["f1"].to_dict() == pytest.approx(
        {(s, r): 0.5 + 0.01 * s for s in (4, 6) for r in ("src", "base")})


def test_number_parsers_refuse_what_is_not_a_number_in_range():
    for parse, good, bad in ((cli._nonneg, ("0", "7"), ("x", "-1", "1.5", "")),
                             (cli._positive, ("1", "9"), ("x", "0", "-2", "2.0", ""))):
        assert [parse(g) for g in good] == [int(g) for g in good]
        for b in bad:
            with pytest.raises(argparse.ArgumentTypeError):
                parse(b)
    assert cli._seeds(["0-2", "5", "7-7"]) == [0, 1, 2, 5, 7]
