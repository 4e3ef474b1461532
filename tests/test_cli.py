"""The command line calls dcatkit.experiment; its quick mode runs for real."""
import os
import re
import subprocess
import sys

import pandas as pd
import pytest


def env(tmp_path):
    return {**os.environ, "DCATKIT_CACHE": str(tmp_path / "cache")}


def test_demo_quick(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dcatkit", "demo", "--quick", "--seeds", "0", "1",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "mean over seeds [0, 1]" in r.stdout and "D-CAT" in r.stdout
    res = pd.read_csv(tmp_path / "results.csv")
    assert sorted(res["seed"].unique()) == [0, 1]
    assert set(res["run"]) == {"video source", "imu baseline", "D-CAT", "No MCMA"}
    assert res[["accuracy", "precision", "recall", "f1"]].apply(lambda c: c.between(0, 1).all()).all()
    summary = pd.read_csv(tmp_path / "summary.csv", index_col=0)
    assert abs(summary.loc["D-CAT", "f1"] - res[res.run == "D-CAT"]["f1"].mean()) < 1e-9
    import json
    blob = json.loads((tmp_path / "results.json").read_text())           # results carry the environment
    assert blob["environment"]["torch"] and blob["params"]["seeds"] == [0, 1]
    assert (res["env_torch"] == blob["environment"]["torch"]).all()


def test_demo_checks_every_seeds_outputs_before_anything_trains(tmp_path, capsys, monkeypatch):
    """A folder where seed 1's baseline checkpoint, a run's resumable state or results.csv goes stopped
    demo only when that file was reached: after seed 0 (or every seed) had trained, with no results
    written. Now every path is checked first: exit 2 naming the path, and nothing in --out but the
    folder (no checkpoint of seed 0, no results)."""
    from dcatkit.__main__ import main

    monkeypatch.setenv("DCATKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    args = ["demo", "--quick", "--seeds", "0", "1", "--data-option", "frame_size=16", "--data-option", "n_frames=4",
            "--device", "cpu", "--out", str(out)]
    for blocker in ("baseline_imu_seed1.pt", "dcat_nomcma_video_imu_seed1.pt.state", "results.csv"):
        (out / blocker).mkdir(parents=True)
        code = main(args)
        assert sorted(p.name for p in out.iterdir()) == [blocker]       # seed 0 wrote no checkpoint
        err = capsys.readouterr().err
        assert code == 2 and f"{out / blocker} is a folder" in err and "nothing has trained" in err, err
        assert "Traceback" not in err
        (out / blocker).rmdir()


def test_train_then_transfer(tmp_path):
    base = [sys.executable, "-m", "dcatkit"]
    common = ["--n-samples", "120", "--epochs", "1"]
    r = subprocess.run(base + ["train", "--modality", "video", "--out", str(tmp_path / "v.pt")] + common,
                       capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(base + ["transfer", "--source-ckpt", str(tmp_path / "v.pt"), "--target", "imu",
                               "--lam", "0.5", "--out", str(tmp_path / "i.pt")] + common,
                       capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert '"f1"' in r.stdout and (tmp_path / "i.pt").is_file()
    r = subprocess.run(base + ["transfer", "--source-ckpt", str(tmp_path / "i.pt"), "--target", "imu",
                               "--out", str(tmp_path / "x.pt")] + common, capture_output=True, text=True,
                       env=env(tmp_path))
    assert r.returncode != 0 and "both 'imu'" in r.stderr
    # issue 11: a source trained on the ID split reused for an OOD run of the same data draw saw most of
    # that run's validation and test samples: refused, with the count and the fix (issue 19: another
    # draw, --data-seed 1, shares no sample and is accepted; tests/test_provenance.py checks that)
    r = subprocess.run(base + ["transfer", "--source-ckpt", str(tmp_path / "v.pt"), "--target", "imu",
                               "--split", "ood", "--out", str(tmp_path / "leak.pt")] + common,
                       capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode == 2, r.stderr[-3000:]
    assert "leakage: the source was trained on" in r.stderr and "--split ood --data-seed 0" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "leak.pt").exists()


def test_sweep_quick_then_transfer_with_a_method(tmp_path):
    base = [sys.executable, "-m", "dcatkit"]
    cmd = base + ["sweep", "--quick", "--methods", "none", "dcat", "kd", "--seeds", "0-1", "--workers", "0",
                  "--option", "kd_temperature=2", "--out", str(tmp_path / "sw")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "paired difference to the baseline" in r.stdout
    assert "kd (lambda = 1): too few seeds: 2 paired, 10 needed" in r.stdout
    res = pd.read_csv(tmp_path / "sw" / "results.csv")
    assert len(res) == 6 and sorted(res["seed"].unique()) == [0, 1] and "env_torch" in res
    from dcatkit.provenance import cpu_name
    assert (res["env_cpu"] == cpu_name()).all()                       # each run names the machine it trained on
    summary = pd.read_csv(tmp_path / "sw" / "summary.csv")
    assert summary.set_index("method").loc["kd", "n_pairs"] == 2
    # the sweep's seed-0 source is a checkpoint like any other: transfer --method kd from it
    import torch
    src = [p for p in (tmp_path / "sw" / "sources").glob("*.pt")
           if torch.load(p, weights_only=True)["meta"]["seed"] == 0]
    assert len(src) == 1
    r = subprocess.run(base + ["transfer", "--source-ckpt", str(src[0]), "--target", "imu", "--method", "kd",
                               "--option", "kd_temperature=3", "--n-samples", "160", "--epochs", "1",
                               "--out", str(tmp_path / "kd.pt")],
                       capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    meta = torch.load(tmp_path / "kd.pt", weights_only=True)["meta"]
    assert meta["method"] == "kd" and meta["objective_options"] == {"kd_temperature": 3}


def test_resume_flag_reaches_training(tmp_path):
    """--resume reads <out>.state (a damaged one is a clear error naming it); without the flag the
    run starts over and overwrites it."""
    base = [sys.executable, "-m", "dcatkit", "train", "--modality", "imu", "--n-samples", "120", "--epochs", "1",
            "--out", str(tmp_path / "i.pt")]
    (tmp_path / "i.pt.state").write_bytes(b"truncated")
    r = subprocess.run(base + ["--resume"], capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode != 0 and "i.pt.state" in r.stderr[-3000:] and "drop --resume" in r.stderr[-3000:]
    r = subprocess.run(base, capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "i.pt").is_file() and not (tmp_path / "i.pt.state").exists()


def test_data_options_reach_the_loader_of_train_and_transfer(tmp_path, capsys):
    """--data-option KEY=VALUE (as sweep takes it) reaches the loader of train and transfer: a
    cough copy with an unreadable wav fails, naming the option to pass, and trains with it."""
    import shutil
    import warnings

    import torch

    from dcatkit.__main__ import main
    from fixtures_data import make_cough

    root = tmp_path / "cough"
    root.mkdir()
    make_cough(root)
    wav = next((root / "007" / "Trial_2_Talking").glob("*_Out.wav"))
    wav.write_bytes(b"RIFF not really a wav")
    base = ["--dataset", "cough", "--root", str(root), "--preset", "cough", "--epochs", "1", "--device", "cpu",
            "--data-option", "sample_rate=8000", "--data-option", "progress=false"]
    src = ["train", "--modality", "audio", "--out", str(tmp_path / "a.pt")] + base
    assert main(src) == 2
    assert "--data-option on_error=skip" in capsys.readouterr().err
    skip = ["--data-option", "on_error=skip"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(src + skip) == 0
        assert main(["transfer", "--source-ckpt", str(tmp_path / "a.pt"), "--target", "imu",
                     "--out", str(tmp_path / "i.pt")] + base + skip) == 0
    ids = torch.load(tmp_path / "i.pt", weights_only=True)["meta"]["provenance"]["train_ids"]
    assert ids and not any(i.startswith("007/Trial_2") for i in ids)
    shutil.rmtree(root)


def test_two_shard_processes_give_the_one_process_rows(tmp_path):
    """Issue 18 item 7: `sweep --shard 1/2` and `--shard 2/2` run at the same time into one folder
    (the middle seed's source is needed by both: trained once under a lock, read by the other);
    `--gather` then summarises the same rows as one process running the whole grid."""
    base = [sys.executable, "-m", "dcatkit", "sweep", "--methods", "none", "dcat", "--sizes", "120", "--seeds", "0-2",
            "--data-seeds", "1", "--epochs-source", "1", "--epochs-target", "1", "--workers", "0",
            "--data-option", "frame_size=16", "--data-option", "n_frames=4"]
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    procs = [subprocess.Popen(base + ["--shard", s, "--out", str(shared)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env(tmp_path)) for s in ("1/2", "2/2")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert "runs finished" in out and "--gather" in out
    assert not (shared / "results.csv").exists()                         # a shard does not summarise
    assert len(list((shared / "runs").glob("*.json"))) == 6 and len(list((shared / "sources").glob("*.pt"))) == 3
    # each source trained once over both shards (CPU training is repeatable, so the rows alone would not tell;
    # test_sweep.py's lock test makes the two race)
    trained = [line.split()[-1] for line in (shared / "sources" / "trained.log").read_text().splitlines()]
    assert sorted(trained) == sorted(p.name for p in (shared / "sources").glob("*.pt"))
    r = subprocess.run(base + ["--gather", "--out", str(shared)], capture_output=True, text=True, timeout=600,
                       env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "data draws [1]" in r.stdout and "dcat (lambda = 1): too few seeds" in r.stdout
    r = subprocess.run(base + ["--out", str(alone)], capture_output=True, text=True, timeout=600, env=env(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    cols = lambda df: df.drop(columns=[c for c in df if c in ("wall_s", "train_time_s") or c.startswith("env_")])
    got, want = (cols(pd.read_csv(d / "results.csv")) for d in (shared, alone))
    assert (got["data_seed"] == 1).all() and len(got) == 6
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(pd.read_csv(shared / "summary.csv"), pd.read_csv(alone / "summary.csv"))
    # a gather with a run missing names it instead of training it
    next((shared / "runs").glob("*.json")).unlink()
    r = subprocess.run(base + ["--gather", "--out", str(shared)], capture_output=True, text=True, timeout=600,
                       env=env(tmp_path))
    assert r.returncode == 2 and "dcatkit: error: 1 of 6 runs are not finished" in r.stderr
    assert "Traceback" not in r.stderr


def test_split_argument_takes_what_the_api_takes(tmp_path, capsys, monkeypatch):
    """--split id | ood | loso | group_kfold:K (issue 20 item 7); a fold split needs --fold."""
    import pytest
    import torch

    from dcatkit.__main__ import _split, main

    monkeypatch.setenv("DCATKIT_CACHE", str(tmp_path / "cache"))
    assert [_split(s) for s in ("id", "ood", "loso", "group_kfold:3")] == ["id", "ood", "loso", ["group_kfold", 3]]
    base = ["train", "--modality", "imu", "--n-samples", "120", "--epochs", "1", "--out", str(tmp_path / "i.pt"),
            "--device", "cpu"]
    for bad, msg in (("group_kfold", "group_kfold:K"), ("group_kfold:1", "K >= 2"), ("kfold", "'loso'")):
        with pytest.raises(SystemExit) as e:
            main(base + ["--split", bad])
        err = capsys.readouterr().err
        assert e.value.code == 2 and "argument --split" in err and msg in err, (bad, err)
    assert main(base + ["--split", "group_kfold:2"]) == 2
    assert "has 2 folds: give --fold 0 .. 1" in capsys.readouterr().err
    assert main(base + ["--split", "group_kfold:2", "--fold", "1"]) == 0
    split = torch.load(tmp_path / "i.pt", weights_only=True)["meta"]["provenance"]["split"]
    assert (split["kind"], split["k"], split["fold"]) == ("group_kfold", 2, 1), split


def test_bad_arguments_stop_at_once_with_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    """Bad input the kit checks ends with 'dcatkit: error: ...' and status 2 before anything
    trains: a downward seed range, a negative data seed, an unknown device, a negative lambda or
    a grid without its baseline in a sweep, a checkpoint path that is a folder. The first case runs
    as `python -m dcatkit` (the entry point's exit status and stderr); the others call its main in
    this process (the same code, without a torch import per case: 7 processes took ~36 s)."""
    from dcatkit.__main__ import main

    monkeypatch.setenv("DCATKIT_CACHE", str(tmp_path / "cache"))
    py = [sys.executable, "-m", "dcatkit"]
    (tmp_path / "adir").mkdir()
    cases = [
        (["sweep", "--seeds", "5-2", "--out", str(tmp_path / "s")], "the --seeds range '5-2' runs downwards"),
        (["sweep", "--seeds", "3-", "--out", str(tmp_path / "s")], "--seeds takes numbers >= 0 or ranges"),
        (["train", "--modality", "imu", "--data-seed", "-1", "--out", "x.pt"], "expected an integer >= 0, got '-1'"),
        (["train", "--modality", "imu", "--device", "gpu", "--out", "x.pt"], "unknown device 'gpu'"),
        (["sweep", "--lams", "-1", "--out", str(tmp_path / "s")], "every value of lams must be a finite number >= 0"),
        (["sweep", "--methods", "dcat", "--out", str(tmp_path / "s")], "have no baseline: add 'none'"),
        (["train", "--modality", "imu", "--n-samples", "120", "--epochs", "1", "--out", str(tmp_path / "adir")],
         "adir is a folder; give a file path in it"),
    ]
    (args, said), *rest = cases
    r = subprocess.run(py + args, capture_output=True, text=True, timeout=300, env=env(tmp_path))
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, (args, r.stderr[-2000:])
    def status(args):                   # argparse's own refusals exit (SystemExit(2)); the kit's return 2
        try:
            return main(args)
        except SystemExit as e:
            return e.code

    for args, said in rest:
        assert status(args) == 2, args
        err = capsys.readouterr().err                 # "dcatkit: error: ..." or argparse's "dcatkit train: error: ..."
        assert re.search(r"^dcatkit( \w+)?: error: ", err, re.M) and said in err, (args, err[-2000:])
    assert not (tmp_path / "s").exists()                                   # no sweep started


@pytest.mark.parametrize("flag, bad, said", [
    ("--folds", "x", "--folds takes numbers >= 0 or ranges like 0-9, got 'x'"),
    ("--folds", "3-1", "the --folds range '3-1' runs downwards"),
    ("--data-seeds", "-1", "--data-seeds takes numbers >= 0 or ranges like 0-9, got '-1'")])
def test_a_bad_fold_or_data_seed_is_named_by_its_own_flag(tmp_path, capsys, flag, bad, said):
    """sweep --folds x (or --data-seeds -1) said 'seeds are numbers >= 0 ...': the message named
    another option than the one given. Now it names the flag."""
    from dcatkit.__main__ import main

    assert main(["sweep", "--split", "loso", flag, bad, "--seeds", "0", "--out", str(tmp_path / "s")]) == 2
    assert f"dcatkit: error: {said}" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_one_data_draw_given_as_an_axis_is_never_a_call():
    """`sweep --data-seeds 1 --seeds 0-9`: ten seeds on one draw describe that draw; the CLI's
    summary pools draws, so the cell reads "too few draws" (and the draw's own row describes it),
    while without --data-seeds each seed is its own draw and seeds pair as they are."""
    import numpy as np

    from dcatkit.sweep import summarise_study

    rows = [{"method": m, "lam": np.nan if m == "none" else 1.0, "n_samples": 100, "seed": s, "data_seed": 1,
             "f1": 0.6 + (0.05 + 0.001 * s if m == "dcat" else 0.0)} for m in ("none", "dcat") for s in range(10)]
    summary, per_draw = summarise_study(pd.DataFrame(rows))
    assert summary.set_index("method").loc["dcat", "call"] == "too few draws" and per_draw is not None
    assert per_draw.set_index("method").loc["dcat", "call"] == "helps"          # the draw, described alone
    own = [{**r, "data_seed": None} for r in rows]                                  # no --data-seeds
    summary, per_draw = summarise_study(pd.DataFrame(own))
    assert per_draw is None and summary.set_index("method").loc["dcat", "call"] == "helps"


def test_a_damaged_data_file_is_a_clean_error(tmp_path, capsys, monkeypatch):
    """UnreadableFile was a bare Exception, so a damaged dataset file ended the CLI with a traceback;
    as a ValueError it is 'dcatkit: error: cannot read <file>: ...' with status 2."""
    from dcatkit.__main__ import main

    monkeypatch.setenv("DCATKIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cough"
    (root / "005").mkdir(parents=True)
    (root / "DataAnnotation.json").write_text('[{"original_filename": "005_no_t')      # a cut-off copy
    assert main(["train", "--dataset", "cough", "--root", str(root), "--modality", "imu", "--device", "cpu",
                 "--out", str(tmp_path / "i.pt")]) == 2
    err = capsys.readouterr().err
    assert f"dcatkit: error: cannot read {root / 'DataAnnotation.json'}: JSONDecodeError" in err, err


def test_a_misspelt_or_clashing_data_option_is_a_clean_error(tmp_path, capsys):
    """--data-option typo=1 was a TypeError from inside the loader, --data-option seed=1 one from
    the call ('multiple values for seed'): both tracebacks. Now 'dcatkit: error:' naming the key
    and what to use instead."""
    from dcatkit.__main__ import main

    args = ["train", "--modality", "imu", "--device", "cpu", "--out", str(tmp_path / "i.pt")]
    assert main(args + ["--data-option", "n_sampels=60"]) == 2
    err = capsys.readouterr().err
    assert "dcatkit: error: synthetic takes no option(s) ['n_sampels']; its options: [" in err and "'n_samples'" in err
    assert main(args + ["--data-option", "seed=1"]) == 2
    assert "--data-option seed=...: ['seed'] are set by the command's own flags" in capsys.readouterr().err
    # --n-samples is the simulator's size: a second value through --data-option silently won before
    assert main(args + ["--data-option", "n_samples=60"]) == 2
    assert "--data-option n_samples=...: ['n_samples'] are set by the command's own flags" in capsys.readouterr().err


def test_a_clashing_data_option_of_a_cross_validation_sweep_is_a_clean_error(tmp_path, capsys):
    """sweep --split loso (or group_kfold:K) loads the data once to count its folds, with the
    --data-option values, before the sweep's own check of them: --data-option seed=3 (or split=,
    root=, n_samples= beside --sizes) was a TypeError traceback ('multiple values for keyword
    argument'). Now the sweep's one-line error, exit 2, as without a cross-validation split."""
    from dcatkit.__main__ import main

    args = ["sweep", "--quick", "--seeds", "0", "--split", "loso", "--device", "cpu", "--out", str(tmp_path)]
    for opt in ("seed=3", "split=id", "n_samples=100"):
        assert main(args + ["--data-option", opt]) == 2, opt
        err = capsys.readouterr().err
        assert f"dcatkit: error: data_options may not set ['{opt.split('=')[0]}']" in err, err


def test_demo_refuses_a_seed_given_twice_before_anything_trains(tmp_path, capsys, monkeypatch):
    """demo --seeds 0 0 ran seed 0 twice and printed a "std over seeds" of 0.000 for one seed's
    run (and a mean weighting it twice): now exit 2 naming the seed, before anything trains."""
    import dcatkit.__main__ as M

    monkeypatch.setattr(M, "compare", lambda *a, **k: pytest.fail("trained"))
    assert M.main(["demo", "--quick", "--seeds", "0", "1", "0", "--out", str(tmp_path)]) == 2
    assert "dcatkit: error: --seeds 0 1 0 names seed(s) [0] more than once" in capsys.readouterr().err


def test_bad_sweep_input_is_refused_before_anything_trains(tmp_path, capsys, monkeypatch):
    """What would fail in every worker (or be silently ignored) is a one-line error, exit 2, before
    anything trains: sizes and epochs below 1, an unknown preset, --sizes on a real dataset, folds
    the split does not have, --redo with --shard, and sweep under torchrun. --quick fills in only
    what is not given (it overrode an explicit --sizes and --epochs-target)."""
    from dcatkit.__main__ import main

    monkeypatch.setenv("DCATKIT_CACHE", str(tmp_path / "cache"))
    out = ["--out", str(tmp_path / "s")]
    small = ["--data-option", "frame_size=16", "--data-option", "n_frames=4"]
    cases = [(["--sizes", "0"], "--sizes: expected an integer >= 1"),
             (["--epochs-target", "0"], "--epochs-target: expected an integer >= 1"),
             (["--preset", "bogus"], "preset must be one of"),
             (["--dataset", "arrays", "--root", "x.npz", "--sizes", "50"], "a size is the simulator's n_samples"),
             (["--dataset", "arrays", "--root", str(tmp_path / "none.npz"), "--quick"], "none.npz"),  # not sizes
             (["--sizes", "120", "--split", "group_kfold:2", "--folds", "5", *small], "has 2 folds"),
             (["--sizes", "120", "--redo", "--shard", "1/2", *small], "redo with a shard would train a source"),
             (["--quick", "--sizes", "120", "--epochs-target", "3", "--seeds", "0", "--gather", *small],
              r"'n_samples': 120.*'epochs_target': 3")]
    import re
    for args, msg in cases:
        code = None
        try:
            code = main(["sweep", *args, *out])
        except SystemExit as e:                                      # argparse's own errors
            code = e.code
        err = capsys.readouterr().err
        assert code == 2 and re.search(msg, err) and "Traceback" not in err, (args, err)
    assert not (tmp_path / "s" / "runs").exists()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["sweep", *out]) == 2 and "not under torchrun" in capsys.readouterr().err


def test_a_sweep_without_sizes_uses_the_simulators_default():
    """--sizes left out (the README's shard example) passed n_samples=None to the simulator, and
    every run failed; now the simulator's own size is used."""
    import json

    from dcatkit.data.synthetic import DEFAULT_N_SAMPLES
    from dcatkit.sweep import _load

    sp = _load("synthetic", None, "id", 0, None, "headroom", json.dumps({"frame_size": 16, "n_frames": 2}),
               ("video", "imu"))
    assert len(sp.train) + len(sp.val) + len(sp.test) == DEFAULT_N_SAMPLES



def test_quick_fills_only_what_is_not_given_and_n_samples_is_synthetic_only(tmp_path, monkeypatch, capsys):
    """demo --quick overrode an explicit --n-samples and --epochs-* with its smoke sizes (sweep
    --quick already filled only unset values), and --n-samples on a real dataset was silently
    ignored: now --quick fills what is not given and --n-samples on real data is an error."""
    import dcatkit.__main__ as cli

    seen = {}

    class Stop(Exception):
        pass

    def fake_compare(splits, **kw):
        seen["epochs"] = kw["epochs"]
        raise Stop

    monkeypatch.setattr(cli, "load", lambda name, **kw: seen.update(n_samples=kw.get("n_samples")))
    monkeypatch.setattr(cli, "compare", fake_compare)
    for args, n, epochs in ((["--quick", "--n-samples", "120", "--epochs-target", "3"], 120, (1, 3)),
                            (["--quick"], 160, (1, 1)),
                            ([], cli.DEFAULT_N_SAMPLES, (None, None))):
        seen.clear()
        try:
            cli.main(["demo", *args, "--out", str(tmp_path)])
        except Stop:
            pass
        assert seen == {"n_samples": n, "epochs": {"source": epochs[0], "target": epochs[1]}}, (args, seen)
    code = cli.main(["train", "--modality", "imu", "--dataset", "cough", "--root", str(tmp_path),
                     "--n-samples", "50", "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "--n-samples sizes the synthetic data only" in err and "--n-samples 50" in err, err
    try:
        cli.main(["train", "--modality", "imu", "--epochs", "0", "--out", str(tmp_path / "x.pt")])
        raise AssertionError("--epochs 0 accepted")
    except SystemExit as e:
        assert e.code == 2 and "expected an integer >= 1" in capsys.readouterr().err


def test_print_study_writes_bounds_as_the_verdict_reads_them(capsys):
    """Audit: _print_study printed the table with 3 decimals, so a "hurts" read off ci_high =
    -0.0003 sat below "ci_high -0.000". The table now writes diff_mean and the bounds with the
    digits stats.format_interval picks: the same numbers as the verdict line."""
    import re
    import types
    import warnings

    import numpy as np

    from dcatkit import stats
    from dcatkit.__main__ import _print_study

    rng = np.random.default_rng(7)
    d0 = np.round(rng.normal(0.0, 0.004, 10), 4)
    d = d0 - stats.signflip_test(d0).interval(0.05)[1] - 0.0003        # the interval's top at -0.0003
    base = rng.normal(0.6, 0.05, 10)
    df = pd.DataFrame([dict(method="none", lam=1.0, n_samples=300, seed=s, f1=base[s]) for s in range(10)]
                      + [dict(method="dcat", lam=1.0, n_samples=300, seed=s, f1=base[s] + d[s]) for s in range(10)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = stats.summarise(df)
    r = summary.set_index("method").loc["dcat"]
    assert r.call == "hurts" and r.ci_high == pytest.approx(-0.0003, abs=1e-9)
    _print_study(types.SimpleNamespace(source="video", target="imu", dataset="synthetic", split="id"), None, df,
                 "f1", summary, None)
    out = capsys.readouterr().out
    table, verdicts = out.split("== verdicts ==")
    shown = stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, 3)           # "-0.0023 [-0.0041, -0.0003]"
    assert f"hurts: {shown}" in verdicts
    (line,) = [ln for ln in table.splitlines() if " dcat " in ln]
    assert re.search(r"-0\.0023\s+-0\.0041\s+-0\.0003\s", line), line
    assert not re.search(r"-0\.0*(?![0-9])", out), out                           # no "-0.000" anywhere


def test_transfer_flags_reach_the_run_and_bad_input_stops_before_the_data(tmp_path, capsys, monkeypatch):
    """--no-mcma, --seed, --lam and --trust-source reach the checkpoint (no test passed them before);
    --log-dir that is a file, or without tensorboard, and a misspelt --dataset with --n-samples stop
    with status 2 and what was expected, before anything loads."""
    import json as _json

    from dcatkit.__main__ import main
    from dcatkit.checkpoint import load_checkpoint

    for k, v in env(tmp_path).items():
        monkeypatch.setenv(k, v)
    common = ["--n-samples", "120", "--epochs", "1", "--device", "cpu"]
    assert main(["train", "--modality", "video", "--out", str(tmp_path / "v.pt"), *common]) == 0
    capsys.readouterr()
    assert main(["transfer", "--source-ckpt", str(tmp_path / "v.pt"), "--target", "imu", "--no-mcma", "--seed", "3",
                 "--lam", "0.25", "--trust-source", "--out", str(tmp_path / "i.pt"), *common]) == 0
    assert _json.loads(capsys.readouterr().out)["trust_source"] is True
    _, meta = load_checkpoint(tmp_path / "i.pt")
    assert meta["mcma"] is False and meta["seed"] == 3 and meta["lam"] == 0.25 and meta["trust_source"] is True
    junk = tmp_path / "junk.txt"
    junk.write_text("x")
    for log_dir in (junk, junk / "deeper"):
        assert main(["train", "--modality", "imu", "--log-dir", str(log_dir), "--out", str(tmp_path / "l.pt"),
                     *common]) == 2
        assert f"{junk} is a file, not a folder" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)        # import fails: not installed
    assert main(["train", "--modality", "imu", "--log-dir", str(tmp_path / "tb"), "--out", str(tmp_path / "l.pt"),
                 *common]) == 2
    assert "--log-dir needs the tensorboard package" in capsys.readouterr().err
    assert main(["train", "--modality", "imu", "--dataset", "bogus", "--n-samples", "120",
                 "--out", str(tmp_path / "l.pt")]) == 2
    assert "unknown dataset 'bogus': expected one of" in capsys.readouterr().err
    assert not (tmp_path / "l.pt").exists() and not (tmp_path / "tb").exists()


def test_the_help_examples_name_their_required_flags():
    """Every `transfer` example in `python -m dcatkit --help` has the --out it requires."""
    import dcatkit.__main__ as cli

    commands = " ".join(line.split("#")[0].strip() for line in cli.__doc__.splitlines()).replace("\\ ", "")
    transfer = [c for c in commands.split("python -m dcatkit ") if c.startswith("transfer")]
    assert len(transfer) == 2 and all("--out " in c for c in transfer), transfer


def test_sweep_flags_reach_the_sweep_call(tmp_path, monkeypatch, capsys):
    """Every sweep flag reaches run_transfer_sweep (and, with --controls, run_studies) as the
    value it names: --no-mcma as mcma=False, --option / --data-option as dicts, --lams, the
    parsed --seeds / --data-seeds / --folds, the epochs, workers and regime. A split with K folds
    and no --folds runs folds 0..K-1; --folds K (one past the last) is refused with exit 2."""
    import dcatkit.sweep as sweep
    from dcatkit.__main__ import main

    monkeypatch.setenv("DCATKIT_CACHE", str(tmp_path / "cache"))
    seen = []

    class Stop(Exception):
        pass

    def fake(name):
        def call(out, *args, **kw):
            seen.append((name, kw))
            raise Stop
        return call

    monkeypatch.setattr(sweep, "run_transfer_sweep", fake("sweep"))
    monkeypatch.setattr(sweep, "run_studies", fake("studies"))
    small = ["--data-option", "frame_size=16", "--data-option", "n_frames=4"]
    flags = ["--methods", "none", "kd", "--no-mcma", "--option", "kd_temperature=2", *small, "--lams", "0.5", "3",
             "--seeds", "0-1", "--data-seeds", "4", "7", "--epochs-source", "2", "--epochs-target", "3",
             "--workers", "1", "--regime", "ambiguous", "--out", str(tmp_path / "s")]
    for extra in ([], ["--controls"]):
        seen.clear()
        with pytest.raises(Stop):
            main(["sweep", *flags, *extra])
        (name, kw), = seen
        assert name == ("studies" if extra else "sweep")
        assert kw["mcma"] is False and kw["options"] == {"kd_temperature": 2}
        assert kw["data_options"] == {"frame_size": 16, "n_frames": 4}
        assert list(kw["lams"]) == [0.5, 3.0] and kw["seeds"] == [0, 1] and kw["data_seeds"] == [4, 7]
        assert (kw["epochs_source"], kw["epochs_target"], kw["workers"], kw["regime"]) == (2, 3, 1, "ambiguous")
        assert kw["shard"] is None and kw["gather"] is False and kw["redo"] is False
        assert "n_labeled" not in kw                       # every label: the grid's default, its identity kept
        seen.clear()
        with pytest.raises(Stop):
            main(["sweep", *flags, *extra, "--n-labeled", "6"])
        assert seen[0][1]["n_labeled"] == 6                # the target's labels (the studies' own override it)
    seen.clear()
    with pytest.raises(Stop):
        main(["sweep", "--sizes", "120", "--split", "group_kfold:2", *small, "--out", str(tmp_path / "s")])
    assert seen[0][1]["folds"] == [0, 1]
    code = main(["sweep", "--sizes", "120", "--split", "group_kfold:2", "--folds", "2", *small,
                 "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "has 2 folds (0 .. 1)" in err, err
