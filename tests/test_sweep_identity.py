"""A transfer run's identity does not depend on how a number is spelled: lambda 1 and 1.0
(and a float option such as kd_temperature 4 and 4.0) are one run, one key, one file, with
the key the default spelling (1.0) always had; so a rerun with the other spelling reads the
run back instead of training it again."""
import hashlib
import json

import pytest

import dcatkit.sweep as S
from dcatkit.runner import _path, run_key


def _key(p):
    """run_key computed independently: the first 16 hex digits of the sha256 of the sorted JSON."""
    return hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:16]


def _fake_source(**p):
    return {"source_f1": 0.5}


def _fake_transfer(**p):
    return {"f1": 0.25 + p["seed"]}


def _no_training(**p):
    raise AssertionError(f"trained again: {p}")


def test_a_whole_number_lambda_is_one_run_with_its_float_spelling(tmp_path, monkeypatch):
    runs = {}
    for lams in ([1], [1.0], [2]):
        ps = S._transfer_params(["none", "dcat"], lams, [None], [0], None, {})
        (runs[str(lams)],) = [p for p in ps if p["method"] == "dcat"]
    one, one_f, two = runs["[1]"], runs["[1.0]"], runs["[2]"]
    assert type(one["lam"]) is float and one == one_f
    # the key the float spelling always had (computed here from the params with lam 1.0), so runs
    # stored by the default lams=(1.0,) and the CLI's --lams (type=float) keep their files
    assert run_key(one) == run_key(one_f) == _key({**one_f, "lam": 1.0})
    assert _path(tmp_path, one) == _path(tmp_path, one_f) == tmp_path / "runs" / f"{_key({**one_f, 'lam': 1.0})}.json"
    assert run_key(two) != run_key(one) and two["lam"] == 2.0
    # a grid listing both spellings is one run of each method
    both = S._transfer_params(["none", "dcat"], [1, 1.0], [None], [0], None, {})
    assert [p["method"] for p in both] == ["none", "dcat"]
    # end to end: stored with lams=[1.0], read back (nothing trains) with lams=[1]
    monkeypatch.setattr(S, "source_task", _fake_source)
    monkeypatch.setattr(S, "transfer_task", _fake_transfer)
    first = S.run_transfer_sweep(tmp_path, methods=["none", "dcat"], lams=[1.0], seeds=[0], workers=0, progress=False)
    monkeypatch.setattr(S, "source_task", _no_training)
    monkeypatch.setattr(S, "transfer_task", _no_training)
    again = S.run_transfer_sweep(tmp_path, methods=["none", "dcat"], lams=[1], seeds=[0], workers=0, progress=False)
    assert again.drop(columns="wall_s").equals(first.drop(columns="wall_s"))
    assert sorted(f.name for f in (tmp_path / "runs").glob("*.json")) == sorted(
        f"{run_key(p)}.json" for p in S._transfer_params(["none", "dcat"], [1.0], [None], [0], None, {}))


def test_a_whole_number_float_option_is_one_run_with_its_float_spelling():
    def kd(options, method="kd"):
        (p,) = [p for p in S._transfer_params(["none", method], [1.0], [None], [0], None, {"options": options})
                if p["method"] == method]
        return p

    four, four_f = kd({"kd_temperature": 4}), kd({"kd_temperature": 4.0})
    assert four["options"] == {"kd_temperature": 4.0} and type(four["options"]["kd_temperature"]) is float
    assert run_key(four) == run_key(four_f) == _key({**four_f, "options": {"kd_temperature": 4.0}})
    assert run_key(kd({"kd_temperature": 5})) != run_key(four)
    # an integer option stays an integer (contrastive's min_negatives), a float one is a float
    c = kd({"min_negatives": 2, "nce_temperature": 1}, method="contrastive")
    assert c["options"] == {"min_negatives": 2, "nce_temperature": 1.0}
    assert type(c["options"]["min_negatives"]) is int and type(c["options"]["nce_temperature"]) is float
    assert S._float_options(["dcat+kd", "contrastive"]) == {"kd_temperature", "nce_temperature"}


@pytest.mark.parametrize("bad", [True, "1", -1.0])
def test_a_bad_lambda_is_still_refused(bad):
    with pytest.raises(ValueError, match=rf"every value of lams must be a finite number >= 0 .*got {bad!r}"):
        S._transfer_params(["none", "dcat"], [bad], [None], [0], None, {})


@pytest.mark.parametrize("bad", [True, False, 1.5, "2"])
def test_a_data_seed_that_is_not_an_integer_is_refused(bad):
    """A data seed is an integer: True would draw seed 1's data under another identity
    (``"data_seed": true``, not 1), so the same draw would train twice under two keys. A bool is
    refused like 1.5 or "2", as the bad lambdas are."""
    with pytest.raises(ValueError, match=rf"data_seeds must be a non-empty list of integers .*got \[{bad!r}\]"):
        S._transfer_params(["none", "dcat"], [1.0], [None], [0], None, {}, [bad])


def test_data_seeds_with_the_published_lists_split_are_refused():
    """split='lists' (UESTC's published lists) is one split whatever the data seed: draws of it are
    copies of one draw, and pooling them as independent draws would fake the between-draw spread.
    Refused before any data loads; one draw, or draws that differ by their hidden labels or a control's shuffle, are kept."""
    fixed = {"dataset": "uestc", "root": "/nonexistent/uestc", "split": "lists", "source": "video", "target": "imu"}
    with pytest.raises(ValueError, match=r"data_seeds=\[0, 1\] with split='lists'.*every draw would be the same data"):
        S._transfer_params(["none", "dcat"], [1.0], [None], [0], None, fixed, [0, 1])
    for seeds, more in (([0], {}), ([0, 1], {"n_labeled": 5}), ([0, 1], {"control": "negative"})):  # the load fails
        with pytest.raises(Exception) as e:
            S._transfer_params(["none", "dcat"], [1.0], [None], [0], None, {**fixed, **more}, seeds)
        assert "with split='lists'" not in str(e.value)
