"""Subject-wise cross-validation (loso, group_kfold), the leakage check, and from_arrays' groups."""
import json

import numpy as np
import pytest

import dcatkit.data as D
from dcatkit.data.dataset import PairedDataset, Splits
from dcatkit.data.splits import content_ids
from helpers import rows_of


def _data(n_subj=6, per_subject=12, seed=0):
    """Recordings of 3 windows each; subject u has ``per_subject`` windows (4 recordings)."""
    rng = np.random.default_rng(seed)
    n = n_subj * per_subject
    subjects = np.repeat(np.arange(n_subj) + 100, per_subject)          # ids 100, 101, ...
    groups = [f"s{subjects[i]}_rec{(i % per_subject) // 3}" for i in range(n)]
    labels = np.array([((i % per_subject) // 3) % 2 for i in range(n)])  # one label per recording
    arrays = {"imu": rng.normal(size=(n, 2, 8)).astype(np.float32)}
    return arrays, labels, subjects, groups


def _subjects(d):
    return set(d.subjects.tolist())


def test_loso_one_fold_per_subject_with_subject_disjoint_validation():
    arrays, labels, subjects, groups = _data()
    folds = D.from_arrays(arrays, labels, subjects, groups=groups, split="loso", seed=3)
    assert isinstance(folds, list) and len(folds) == 6
    all_subjects = sorted(set(subjects.tolist()))
    for f, s in enumerate(folds):
        info = s.report["split"]
        # independent expectation: fold f holds out the f-th subject in sorted order, all of its windows
        u = all_subjects[f]
        assert info["kind"] == "loso" and info["fold"] == f and info["n_folds"] == 6 and info["seed"] == 3
        assert info["held_out_subjects"] == [u] and _subjects(s.test) == {u}
        assert sorted(s.test.ids) == sorted(np.asarray(content_ids(arrays))[subjects == u])
        tr, va = _subjects(s.train), _subjects(s.val)
        assert not (tr & va) and u not in tr | va and tr | va | {u} == set(all_subjects)
        # validation: round(0.15 / 0.85 * 5) = 1 of the 5 remaining subjects
        assert len(va) == 1 and info["subjects"]["val"] == sorted(va)
        assert s.report["leakage_check"] == {"recordings": "disjoint", "subjects": "disjoint"}
        # IMU scaled with this fold's own training windows
        raw = arrays["imu"][rows_of(arrays, s.train.ids)]
        np.testing.assert_allclose(s.report["imu_minmax"]["min"], raw.min(axis=(0, 2)), rtol=1e-6)
    # validation subjects depend on the seed, the held-out subjects do not
    other = D.from_arrays(arrays, labels, subjects, groups=groups, split="loso", seed=4)
    assert [o.report["split"]["held_out_subjects"] for o in other] == [[u] for u in all_subjects]
    assert [_subjects(o.val) for o in other] != [_subjects(s.val) for s in folds]
    # the validation share is of the subjects left for training and validation: ratios (0.5, 0.25, 0.25)
    # with 9 subjects leave 8 per fold, and 0.25 / (0.5 + 0.25) of 8 = 2.67 -> 3 (not 0.25 of 8 = 2)
    arrays, labels, subjects, groups = _data(n_subj=9)
    wide = D.from_arrays(arrays, labels, subjects, groups=groups, split="loso", ratios=(0.5, 0.25, 0.25))
    assert [len(_subjects(s.val)) for s in wide] == [3] * 9 and [len(_subjects(s.train)) for s in wide] == [5] * 9


def test_group_kfold_partitions_subjects():
    arrays, labels, subjects, groups = _data(n_subj=7)
    folds = D.from_arrays(arrays, labels, subjects, groups=groups, split=("group_kfold", 3), seed=0)
    assert len(folds) == 3
    held = [s.report["split"]["held_out_subjects"] for s in folds]
    flat = [u for h in held for u in h]
    assert sorted(flat) == sorted(set(subjects.tolist()))            # each subject tested exactly once
    assert sorted(len(h) for h in held) == [2, 2, 3]                  # 7 subjects, balanced folds
    for f, s in enumerate(folds):
        assert s.report["split"]["k"] == 3 and s.report["split"]["fold"] == f
        parts = [_subjects(d) for d in s]
        assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert parts[2] == set(held[f])
        seen = [set(d.groups) for d in s]
        assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    ids = sorted(i for s in folds for i in s.test.ids)
    assert ids == sorted(content_ids(arrays))                        # every window tested exactly once


def test_fold_split_arguments_and_too_few_subjects():
    arrays, labels, subjects, groups = _data(n_subj=4)
    for bad in ("group_kfold", ("group_kfold", 1), ("group_kfold", 2.5), "lopo", ("kfold", 3)):
        with pytest.raises(ValueError, match="group_kfold"):
            D.from_arrays(arrays, labels, subjects, groups=groups, split=bad)
    with pytest.raises(ValueError, match="at least 5 subjects, found 4"):
        D.from_arrays(arrays, labels, subjects, groups=groups, split=("group_kfold", 5))
    two = subjects < 102
    with pytest.raises(ValueError, match="leaves 1 subject"):
        D.from_arrays({"imu": arrays["imu"][two]}, labels[two], subjects[two],
                      groups=[g for g, t in zip(groups, two) if t], split="loso")
    with pytest.raises(ValueError, match="needs a subject"):
        D.from_arrays(arrays, labels, groups=groups, split="loso")


def test_fold_split_file_written_and_reloaded(tmp_path):
    arrays, labels, subjects, groups = _data()
    f = tmp_path / "folds.json"
    a = D.from_arrays(arrays, labels, subjects, groups=groups, split=("group_kfold", 3), seed=1, split_file=f)
    stored = json.loads(f.read_text())
    assert stored["kind"] == "group_kfold" and stored["k"] == 3 and len(stored["folds"]) == 3
    b = D.from_arrays(arrays, labels, subjects, groups=groups, split=("group_kfold", 3), seed=9, split_file=f)
    assert [x.val.ids for x in b] == [x.val.ids for x in a] and all(x.report["split"]["reloaded"] for x in b)
    assert [x.report["split"]["held_out_subjects"] for x in b] == [x.report["split"]["held_out_subjects"] for x in a]
    with pytest.raises(ValueError, match="holds a .*group_kfold"):
        D.from_arrays(arrays, labels, subjects, groups=groups, split=("group_kfold", 2), split_file=f)
    with pytest.raises(ValueError, match="holds a .*group_kfold"):
        D.from_arrays(arrays, labels, subjects, groups=groups, split="loso", split_file=f)


def test_load_returns_folds_naming_dataset_and_split():
    folds = D.load("synthetic", n_samples=60, n_subjects=4, split="loso", modalities=("imu",), seed=1)
    assert len(folds) == 4
    for f, s in enumerate(folds):
        assert s.report["dataset"] == "synthetic"
        info = s.report["split"]
        assert {k: info[k] for k in ("kind", "seed", "ratios", "fold")} == \
            {"kind": "loso", "seed": 1, "ratios": [0.7, 0.15, 0.15], "fold": f}
    single = D.load("synthetic", n_samples=60, n_subjects=4, modalities=("imu",))
    assert isinstance(single, Splits) and single.report["dataset"] == "synthetic"
    assert single.report["split"]["kind"] == "id" and single.report["split"]["fold"] is None


# --------------------------------------------------------------------------- from_arrays groups

def test_from_arrays_requires_groups():
    arrays, labels, subjects, groups = _data()
    with pytest.raises(ValueError, match=r"needs groups=.*leakage.*groups='samples'"):
        D.from_arrays(arrays, labels, subjects)
    with pytest.raises(ValueError, match="'samples'"):
        D.from_arrays(arrays, labels, subjects, groups="recordings")
    with pytest.raises(ValueError, match="one recording id per sample"):
        D.from_arrays(arrays, labels, subjects, groups=groups[:-1])
    s = D.from_arrays(arrays, labels, subjects, groups="samples")
    assert s.train.groups == s.train.ids                     # each sample its own recording
    s = D.from_arrays(arrays, labels, subjects, groups=groups)
    assert s.train.groups == [groups[r] for r in rows_of(arrays, s.train.ids)]


# --------------------------------------------------------------------------- leakage check

def _ds(ids, groups, subjects):
    n = len(ids)
    return PairedDataset({"imu": np.zeros((n, 1, 2), np.float32)}, [0] * n, ["a"], subjects, ids, None, groups)


def _splits(kind, tr, va, te):
    return Splits(_ds(*tr), _ds(*va), _ds(*te), {"split": {"kind": kind}})


def test_check_leakage_names_shared_recordings_and_subjects():
    clean = _splits("ood", (["a0", "a1"], ["a", "a"], [1, 1]), (["b0"], ["b"], [2]), (["c0"], ["c"], [3]))
    assert D.check_leakage(clean) == {"recordings": "disjoint", "subjects": "disjoint"}
    # one recording's windows in train and test
    leaky = _splits("id", (["a0", "b0"], ["a", "b"], [1, 1]), (["c0"], ["c"], [2]), (["a1"], ["a"], [1]))
    with pytest.raises(ValueError, match=r"1 recording\(s\) in more than one part — train & test: 1 \(e.g. \['a'\]\)"):
        D.check_leakage(leaky)
    # a subject in train and val: a leak for a subject split, expected for an ID split
    shared_subject = (["a0"], ["a"], [1]), (["b0"], ["b"], [1]), (["c0"], ["c"], [2])
    with pytest.raises(ValueError, match=r"1 subject\(s\) in more than one part — train & val: 1 \(e.g. \[1\]\)"):
        D.check_leakage(_splits("loso", *shared_subject))
    with pytest.raises(ValueError, match="subject"):
        D.check_leakage(_splits("group_kfold", *shared_subject))
    assert D.check_leakage(_splits("id", *shared_subject))["subjects"].startswith("not checked")
    with pytest.raises(ValueError, match="subject"):
        D.check_leakage(_splits("id", *shared_subject), subject_disjoint=True)
    # unknown subjects cannot be vouched for in a subject split
    with pytest.raises(ValueError, match="without a subject"):
        D.check_leakage(_splits("ood", (["a0"], ["a"], [-1]), (["b0"], ["b"], [2]), (["c0"], ["c"], [3])))
    # datasets without groups: the ids are the recordings, so a window in two parts is caught
    dup = Splits(PairedDataset({"imu": np.zeros((1, 1, 2))}, [0], ["a"], ids=["w"]),
                 PairedDataset({"imu": np.zeros((1, 1, 2))}, [0], ["a"], ids=["v"]),
                 PairedDataset({"imu": np.zeros((1, 1, 2))}, [0], ["a"], ids=["w"]))
    with pytest.raises(ValueError, match="train & test: 1"):
        D.check_leakage([clean, dup])


def test_split_file_that_leaks_is_refused(tmp_path):
    """A stored split is re-checked on reload: another subject map, or a hand edit, is caught."""
    arrays, labels, subjects, groups = _data()
    f = tmp_path / "ood.json"
    D.from_arrays(arrays, labels, subjects, groups=groups, split="ood", split_file=f)
    moved = subjects.copy()
    moved[subjects == json.loads(f.read_text())["subjects"]["test"][0]] = \
        json.loads(f.read_text())["subjects"]["train"][0]                 # a test subject renamed to a train one
    with pytest.raises(ValueError, match=r"leakage.*subject\(s\) in more than one part"):
        D.from_arrays(arrays, labels, moved, groups=groups, split="ood", split_file=f)
    data = json.loads(f.read_text())
    data["val"].append(data["train"][0])                                  # one recording in two parts
    f.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"leakage.*1 recording\(s\).*train & val"):
        D.from_arrays(arrays, labels, subjects, groups=groups, split="ood", split_file=f)
