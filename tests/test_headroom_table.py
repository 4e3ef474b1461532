"""measure_headroom's table: each column is the run's own number (load and training stood in)."""
import types

import dcatkit.headroom as H


def test_each_run_row_gives_its_test_accuracy_and_f1_apart(monkeypatch):
    def fake_load(name, **kw):
        return types.SimpleNamespace(train=[0] * (kw["n_samples"] // 2))

    def fake_train(splits, modality, **kw):      # accuracy and F1 differ, and differ per run
        n = len(splits.train)
        return types.SimpleNamespace(test={"accuracy": 0.9 - kw["seed"] / 100 - n / 1e5, "f1": 0.4 + n / 1e5})

    monkeypatch.setattr(H, "load", fake_load)
    monkeypatch.setattr(H, "train_unimodal", fake_train)
    df = H.measure_headroom("headroom", "imu", sizes=(40,), n_ceiling=800, seeds=(1, 2))
    for r in df.itertuples():
        n = r.n_samples // 2
        assert r.n_train == n
        assert r.accuracy == 0.9 - r.seed / 100 - n / 1e5 and r.f1 == 0.4 + n / 1e5
