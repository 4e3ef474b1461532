"""dcatkit.studies: a study's own source_labels, distinct study names, and a misspelt
source_labels refused before a target trains (the simulator's fingerprint and training stood in)."""
import pytest

from dcatkit import studies


@pytest.fixture
def no_setup(monkeypatch):
    monkeypatch.setattr(studies, "control_setup", lambda source, target, control: f"setup-{source}-{control}")


def test_a_studys_source_labels_overrides_its_kinds(no_setup):
    plan = [dict(study="pos", kind="positive", methods=["none", "dcat"], labels=[20, 60]),
            dict(study="pos same", kind="positive", methods=["none", "dcat"], labels=[20, 60], source_labels="same"),
            dict(study="cur all", kind="curve", methods=["none"], labels=[20, 60], source_labels="all")]
    srcs, runs = studies.control_plan(plan, seeds=[0], draws=[0], n_samples=300)
    by_study = {s["study"]: {r["source_labels"] for r in runs if r["study"] == s["study"]} for s in plan}
    assert by_study == {"pos": {"all"}, "pos same": {"same"}, "cur all": {"all"}}
    # the positive kind's teacher on every label, its "same" study's teachers on each label count;
    # the curve's video source on every label
    assert sorted((s["source"], str(s["n_labeled"])) for s in srcs) == \
        [("imu_clean", "20"), ("imu_clean", "60"), ("imu_clean", "None"), ("video", "None")]


def test_two_studies_of_one_name_are_refused(no_setup):
    plan = [dict(study="pos", kind="positive", methods=["none"]), dict(study="pos", kind="curve", methods=["none"])]
    with pytest.raises(ValueError, match="study names must be distinct"):
        studies.control_plan(plan, seeds=[0], draws=[0], n_samples=300)


def test_control_plan_refuses_a_misspelt_source_labels_before_anything_trains(no_setup):
    """The plan is what run_controls reads before it trains a source: a study whose source_labels
    is neither 'all' nor 'same' is refused there, naming the study and the value."""
    plan = [dict(study="pos", kind="positive", methods=["none", "dcat"], labels=[20]),
            dict(study="pos same", kind="positive", methods=["none", "dcat"], labels=[20], source_labels="Same")]
    with pytest.raises(ValueError, match=r"study 'pos same': source_labels must be 'all' .* got 'Same'"):
        studies.control_plan(plan, seeds=[0], draws=[0], n_samples=300)
    srcs, _ = studies.control_plan(plan[:1], seeds=[0], draws=[0], n_samples=300)      # the valid study alone: planned
    assert srcs


def test_study_task_refuses_a_misspelt_source_labels_before_the_target_trains(monkeypatch, tmp_path):
    import dcatkit.experiment as E

    monkeypatch.setattr(studies, "study_source_task", lambda **kw: {"source_f1": 0.5, "source_recall": 0.5})

    def trained(*a, **kw):
        raise AssertionError("the target trained")

    monkeypatch.setattr(E, "train_transfer", trained)
    with pytest.raises(ValueError, match="source_labels must be 'all'"):
        studies.study_task(out_dir=str(tmp_path), study="x", method="dcat", seed=0, draw=0, n_samples=60,
                           n_labeled=20, source="video", target="imu", source_labels="Same", device="cpu")


def test_verdict_table_reads_each_studys_per_draw_rows_only():
    """Two studies with one method, lambda and size (a made-up tidy table, no training): each
    verdict_table row's per-draw text is its own study's two draws, by hand."""
    import numpy as np
    import pandas as pd

    diffs = {"pos": {0: [0.25, 0.25, 0.25, -0.25], 1: [0.5] * 4},              # +0.125 (3/1); +0.500 (4/0)
             "pos b": {0: [-0.125] * 4, 1: [-0.25, -0.25, 0.25, -0.25]}}        # -0.125 (0/4); -0.125 (1/3)
    rows = []
    for study, per in diffs.items():
        for d in (0, 1):
            for s in range(4):
                base = 2.0 + 0.5 * d + 0.125 * s
                rows += [(study, "none", 0.0, d, s, base), (study, "dcat", 1.0, d, s, base + per[d][s])]
    tidy = pd.DataFrame(rows, columns=["study", "method", "lam", "data_seed", "seed", "value"]).assign(
        kind="positive", size=20, unit="labels", metric="f1")
    tidy = tidy.assign(f1=tidy.value, recall=tidy.value, source_f1=0.9)[list(studies.TIDY)]
    pooled, per = studies.pooled_verdicts(tidy)
    table = studies.verdict_table(pooled, per).set_index("study")["Δ per draw (seeds +/-)"]
    by_hand = {study: "; ".join(f"{np.mean(v):+.3f} ({sum(x > 0 for x in v)}/{sum(x < 0 for x in v)})"
                                for v in per_study.values()) for study, per_study in diffs.items()}
    assert by_hand == {"pos": "+0.125 (3/1); +0.500 (4/0)", "pos b": "-0.125 (0/4); -0.125 (1/3)"}
    assert table.to_dict() == by_hand
