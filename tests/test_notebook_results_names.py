"""Notebooks 01 to 05 name each results file by everything it records.

The audit: two runs that differed only by data seed (or fold, data size, epochs, preset) wrote
one ``transfer-...-lam0.1-seed0.csv``, the second replacing the first, and 02 / 05 recorded no
fold at all. Now every stem is ``runs.results_stem(readable head, params, readable tail)``, the
key in the middle being ``paths.settings_key`` of the very params the file's JSON records.

Checked here: ``runs.results_stem`` itself (what differs, what is equal, bad input), and the
notebooks at CI size (papermill into a temporary folder): every file they write carries the key
of the params its JSON holds, those params hold the data seed, the fold and the loader options,
and 03 run with data seed 0 then 1 into one ``out_dir`` leaves two results files, one per seed;
so does 04 (its ablation, paired and Table IV files: they were named by dataset, split and
modalities alone, so a second data seed replaced the first's).
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import ci_size
from dcatkit import paths, runs

REPO = Path(__file__).resolve().parent.parent
NB = REPO / "notebooks"

# the params notebook 03 records for its defaults at CI size (the shape of every notebook's params)
BASE = dict(dataset="synthetic", split="loso-fold0", fold=0, source="video", target="imu", lam=0.1, loss="dcat",
            preset="synthetic", epochs=1, source_epochs=1, seed=0, data_seed=0, setup="670867401232",
            data={"n_samples": 96, "frame_size": 16, "n_frames": 4})
HEAD, TAIL = "transfer-synthetic-loso-fold0-video-imu", "lam0.1-seed0"
KEY = re.compile(r"-([0-9a-f]{10})(?=-|$)")


def _stem(**changes):
    return runs.results_stem(HEAD, {**BASE, **changes}, TAIL)


# --------------------------------------------------------------------------- runs.results_stem


@pytest.mark.parametrize("changes", [dict(data_seed=1), dict(fold=1, split="loso-fold1"), dict(fold=1),
                                     dict(data={**BASE["data"], "n_samples": 200}), dict(epochs=2),
                                     dict(source_epochs=None), dict(preset="paper"), dict(setup="000000000000")],
                         ids=["data_seed", "fold+split", "fold", "n_samples", "epochs", "source_epochs", "preset",
                              "setup"])
def test_stem_differs_when_a_recorded_parameter_differs(changes):
    """The readable head and tail are equal here (they do not show the data seed, the size, ...);
    the key tells the runs apart."""
    assert _stem(**changes) != _stem()


def test_stem_is_equal_for_equal_parameters():
    shuffled = dict(reversed(list({**BASE, "data": dict(reversed(list(BASE["data"].items())))}.items())))
    assert runs.results_stem(HEAD, shuffled, TAIL) == _stem() == runs.results_stem(HEAD, json.loads(json.dumps(BASE)),
                                                                                   TAIL)


def test_stem_keeps_the_readable_name_around_the_key_of_the_params():
    stem = _stem()
    assert stem == f"{HEAD}-{paths.settings_key(**BASE)}-{TAIL}"      # the checkpoints' hash, of the params
    assert re.fullmatch(r"[0-9a-f]{10}", stem[len(HEAD) + 1:-len(TAIL) - 1])
    assert runs.results_stem("class_counts-synthetic-id", {"data_seed": 0}) == \
        f"class_counts-synthetic-id-{paths.settings_key(data_seed=0)}"      # no tail: the key ends the name


@pytest.mark.parametrize("head, params, tail, said", [
    ("", BASE, "", "head must be a non-empty file-name part"),
    ("out/transfer", BASE, "", "without '/'"),
    (HEAD, [("data_seed", 0)], "", "params must be a mapping with str keys"),
    (HEAD, {0: "data_seed"}, "", "params must be a mapping with str keys"),
    (HEAD, BASE, "seed0/x", "tail must be a file-name part"),
])
def test_stem_refuses_bad_input(head, params, tail, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        runs.results_stem(head, params, tail)


# --------------------------------------------------------------------------- the notebooks, at CI size

CI = {**ci_size.DATA, **ci_size.TRAIN}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("results_names")
    env = {k: v for k, v in os.environ.items() if k != "DCATKIT_FIGURES_DIR"}
    env = {**env, "DCATKIT_CACHE": str(root / "source_cache"), "MPLBACKEND": "Agg",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return root, env


def _papermill(name: str, root: Path, env, *yaml: str, **params):
    args = ci_size.papermill_args({**params, "out_dir": root / "out"}) + [a for y in yaml for a in ("-y", y)]
    executed = root / f"{name}-{'-'.join(f'{k}{v}' for k, v in params.items())}.ipynb"
    cmd = [sys.executable, "-m", "papermill", str(NB / f"{name}.ipynb"), str(executed), "-k", "python3",
           "--no-progress-bar", *args]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"papermill {name} failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"


def _written(folder: Path) -> dict[str, dict]:
    """{stem: the params its JSON records} of every results file in ``folder``; each .csv has its .json."""
    stems = {p.stem for p in folder.glob("*.json")}
    assert stems and stems == {p.stem for p in folder.glob("*.csv")}, sorted(folder.iterdir())
    return {s: json.loads((folder / f"{s}.json").read_text())["params"] for s in sorted(stems)}


def _check_named_by_params(stem: str, params: dict, **expected):
    """The one key in ``stem`` is the hash of the params its JSON records, and those hold
    ``expected`` (data seed, fold, split) and the loader options of the run."""
    keys = KEY.findall(stem)
    assert len(keys) == 1, f"{stem}: expected one 10-hex key in the name, found {keys}"
    recorded = {k: v for k, v in params.items() if k != "flips"}       # 05's pairs: a result, not a parameter
    assert keys[0] == paths.settings_key(**recorded), f"{stem}: its key is not the hash of the params it records"
    assert {k: params.get(k) for k in expected} == expected, f"{stem}: {params}"
    data = params.get("data", params)                                  # 01 records the loader options flat
    assert data["n_samples"] == CI["n_samples"], params


def test_notebook_01_names_its_files_by_data_seed_and_fold(work):
    root, env = work
    _papermill("01_preprocessing", root, env, **ci_size.DATA, data_seed=1, split="loso", fold=1)
    got = _written(root / "out" / "01_preprocessing")
    assert {re.sub(KEY, "-KEY", s) for s in got} == {"class_counts-synthetic-loso-fold1-KEY",
                                                      "subject_counts-synthetic-loso-fold1-KEY"}
    for stem, params in got.items():
        _check_named_by_params(stem, params, data_seed=1, fold=1, split="loso-fold1")


def test_notebooks_02_and_05_record_the_fold_in_params_and_rows(work):
    root, env = work
    _papermill("02_unimodal", root, env, **CI, split="loso", fold=1)
    _papermill("05_confusion_analysis", root, env, "subject_split: [group_kfold, 2]", **CI, split="loso", fold=1)
    for nb, heads in (("02_unimodal", {"unimodal-synthetic-loso-fold1-video-imu-KEY-seed0"}),
                      ("05_confusion_analysis", {"per_class-synthetic-loso-fold1-video-imu-KEY-lam1-mcma-seed0",
                                                 "pairs-synthetic-loso-fold1-video-imu-KEY-lam1-mcma-seed0",
                                                 "subjects-synthetic-group_kfold2-video-imu-KEY-lam1-mcma-seed0"})):
        got = _written(root / "out" / nb)
        assert {re.sub(KEY, "-KEY", s) for s in got} == heads
        for stem, params in got.items():
            subjects = stem.startswith("subjects-")      # section 5: its own subject split, every fold of it
            _check_named_by_params(stem, params, data_seed=0, **(dict(split="group_kfold2") if subjects else
                                                                 dict(split="loso-fold1", fold=1)))
            rows = pd.read_csv(root / "out" / nb / f"{stem}.csv")
            assert (rows["data_seed"] == 0).all() and (rows["n_samples"] == CI["n_samples"]).all(), stem
            if subjects:                                 # both folds' subjects, named by the split, not 'fold0'
                assert set(rows["fold"]) == {0, 1} and (rows["split"] == "group_kfold2").all(), stem
            else:
                assert (rows["fold"] == 1).all() and (rows["split"] == "loso-fold1").all(), stem


def test_notebook_03_two_data_seeds_leave_two_results_files(work):
    """The audit's run: papermill 03 with data_seed 0, then 1, into one out_dir."""
    root, env = work
    for data_seed in (0, 1):
        _papermill("03_transfer", root, env, **CI, lam=0.1, data_seed=data_seed)
    got = _written(root / "out" / "03_transfer")
    results = [s for s in got if s.startswith("transfer-")]
    assert len(results) == 2, f"expected one transfer results file per data seed, found {results}"
    seeds = {s: set(pd.read_csv(root / "out" / "03_transfer" / f"{s}.csv")["data_seed"]) for s in results}
    assert sorted(map(sorted, seeds.values())) == [[0], [1]], seeds
    for stem, params in got.items():
        assert re.sub(KEY, "-KEY", stem).endswith("-synthetic-id-video-imu-KEY-lam0.1-seed0"), stem
        _check_named_by_params(stem, params, fold=None, split="id")
    assert {p["data_seed"] for p in got.values()} == {0, 1}


def test_notebook_04_two_data_seeds_leave_two_sets_of_files(work):
    """Notebook 04 with data seed 0, then 1, into one out_dir: one ablation, one paired and one
    Table IV file per seed, each named by the hash of the params its JSON (the ablation's, for
    the Table IV CSV) records; the paired file records those params too (it recorded none)."""
    root, env = work
    for data_seed in (0, 1):
        _papermill("04_lambda_ablation", root, env, "lams: [1.0]", "seeds: [0, 1]", "mcma_options: [true]", **CI,
                   workers=0, data_seed=data_seed)
    folder = root / "out" / "04_lambda_ablation"
    got = {p.stem: json.loads(p.read_text())["params"] for p in folder.glob("*.json")}
    assert {p.stem for p in folder.glob("*.csv")} - set(got) == {p.stem for p in folder.glob("table4-*.csv")}
    named = {re.sub(KEY, "-KEY", s) for s in [*got, *(p.stem for p in folder.glob("table4-*.csv"))]}
    assert named == {f"{kind}-synthetic-id-video-imu-KEY" for kind in ("ablation", "paired", "table4")}, sorted(got)
    by_seed = {}
    for stem, params in got.items():
        _check_named_by_params(stem, params, split="id", lams=[1.0], mcma_options=[True])
        by_seed.setdefault(params["data_seed"], set()).add(stem.split("-", 1)[0])
        rows = pd.read_csv(folder / f"{stem}.csv")
        if stem.startswith("ablation-"):
            assert set(rows["data_seed"]) == {params["data_seed"]}, stem
    assert by_seed == {0: {"ablation", "paired"}, 1: {"ablation", "paired"}}, by_seed
    keys = {KEY.findall(s)[0] for s in got if s.startswith("ablation-")}
    assert {KEY.findall(p.stem)[0] for p in folder.glob("table4-*.csv")} == keys and len(keys) == 2
