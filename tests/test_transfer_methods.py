"""Transfer objectives inside the training loop: D-CAT is Eq. (19) computed by hand,
bit for bit; "none" is the baseline bit for bit (also while L_CA is monitored); every
objective honours MCMA (an all-wrong source leaves the baseline untouched); learned
maps train with the target and are not saved; the source cache stores what each
objective reads."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcatkit.experiment import train_transfer, train_unimodal
from dcatkit.losses import cross_attention_loss
from dcatkit.objectives import METHODS, SourceOutput
from dcatkit.source_cache import SourceCache, cache_key
from dcatkit.train import LiveSource, fit, fit_transfer, make_loader, seed_everything
from helpers import TINY, same_state, video_source_setup
from helpers import new_imu_model as new_model

P = TINY["imu"]


@pytest.fixture(scope="module")
def setup():
    return video_source_setup()


def test_dcat_is_eq19_by_hand(setup):
    """One epoch of fit_transfer(method="dcat") with the live source == a hand-written
    loop of L = CE + lam * L_CA(K_t, V_t, K_s, V_s; source-correct mask), bit for bit."""
    sp, src = setup
    lam, seed = 0.7, 3
    res = fit_transfer(new_model(sp, seed), src.model.cpu(), sp.train, sp.val, lam=lam, method="dcat", preset=P,
                       epochs=1, seed=seed, source_cache=False, progress=False, device="cpu")   # bit for bit: CPU
    model = new_model(sp, seed)
    seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=P.lr, weight_decay=P.weight_decay)
    src.model.eval()
    model.train()
    for batch in make_loader(sp.train, P.batch_size, shuffle=True, seed=seed):
        out = model(batch["imu"])
        with torch.no_grad():
            s = src.model(batch["video"])
        correct = s.logits.argmax(1) == batch["label"]                          # Eq. (16)
        loss = F.cross_entropy(out.logits, batch["label"]) + lam * cross_attention_loss(
            out.k, out.v, s.k, s.v, correct)                                    # Eqs. (17)-(19)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert same_state(res.model, model)
    legacy = fit_transfer(new_model(sp, seed), src.model, sp.train, sp.val, lam=lam, loss="dcat", preset=P,
                          epochs=1, seed=seed, source_cache=False, progress=False, device="cpu")
    assert same_state(legacy.model, model)


def test_none_is_the_baseline_even_when_monitored(setup):
    sp, src = setup
    base = train_unimodal(sp, "imu", preset=P, seed=1, progress=False)
    none = train_transfer(sp, src, "imu", method="none", preset=P, seed=1, progress=False)
    watched = train_transfer(sp, src, "imu", method="none", monitor="dcat", preset=P, seed=1, progress=False)
    dcat = train_transfer(sp, src, "imu", lam=1.0, preset=P, seed=1, progress=False)
    for run in (none, watched):
        assert same_state(run.model, base.model) and run.test["f1"] == base.test["f1"]
        assert run.history["train_ce"].tolist() == base.history["train_ce"].tolist()
    assert "train_ca" not in none.history and (watched.history["train_ca"] > 0).all()
    assert "train_mask_frac" in watched.history
    # the monitored L_CA is the quantity D-CAT optimises: same first-epoch batches, the
    # same untrained start, so the two agree before the D-CAT run has learnt anything
    assert not same_state(dcat.model, base.model)
    assert set(watched.history.columns) == set(dcat.history.columns)


class WrongSource:
    """The real frozen source, but reporting every sample as misclassified."""

    def __init__(self, model):
        self.live = LiveSource(model, "video")
        self.batch_modalities, self.d_attn = ("video",), model.config["d_attn"]

    def to(self, device):                 # the training loop moves a source that can be moved
        self.live.to(device)
        return self

    def __call__(self, batch, device):
        s = self.live(batch, device)
        return s._replace(correct=torch.zeros_like(s.correct))


@pytest.mark.parametrize("method", [m for m in METHODS if m != "none"])
def test_every_objective_masks_an_all_wrong_source_to_the_baseline(setup, method):
    """With MCMA and a source that is never right, no objective may move the target:
    the run equals fit() bit for bit (its learned maps get no gradient from the data)."""
    sp, src = setup
    base = fit(new_model(sp, 2), sp.train, sp.val, preset=P, seed=2, progress=False)
    wrong = fit_transfer(new_model(sp, 2), WrongSource(src.model), sp.train, sp.val, lam=5.0, method=method,
                         source_modality="video", preset=P, seed=2, progress=False)
    assert same_state(wrong.model, base.model)
    assert (wrong.history["train_mask_frac"] == 0).all()
    unmasked = fit_transfer(new_model(sp, 2), WrongSource(src.model), sp.train, sp.val, lam=5.0, method=method,
                            mcma=False, source_modality="video", preset=P, seed=2, progress=False)
    assert not same_state(unmasked.model, base.model)


@pytest.mark.parametrize("method,stats", [("kd", ["kd"]), ("fitnet", ["fitnet"]), ("contrastive", ["nce"]),
                                          ("dcat+kd", ["ca", "kd"])])
def test_methods_train_end_to_end_with_the_cache(setup, tmp_path, method, stats):
    sp, src = setup
    res = fit_transfer(new_model(sp, 4), src.model, sp.train, sp.val, lam=1.0, method=method, preset=P,
                       seed=4, progress=False, cache_dir=tmp_path, checkpoint=tmp_path / "t.pt")
    for s in stats:
        assert np.isfinite(res.history[f"train_{s}"]).all() and (res.history[f"train_{s}"] > 0).all()
    obj = res.objective
    assert obj.name == method
    # learned maps were trained (they started from the seed's init), and are not in the checkpoint
    if list(obj.parameters()):
        with torch.random.fork_rng():
            torch.manual_seed(4)
            fresh = type(obj)(d_target=16, d_source=16)
        assert any(not torch.equal(a.cpu(), b) for a, b in zip(obj.state_dict().values(), fresh.state_dict().values()))
    saved = torch.load(tmp_path / "t.pt", weights_only=True)
    assert saved["state_dict"].keys() == res.model.state_dict().keys()
    assert saved["meta"]["method"] == method
    folder = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert {f.stem for f in folder.glob("*.npy")} == {*obj.needs, "correct"}


def test_cache_stores_logits_and_pooled_like_the_live_source(setup, tmp_path):
    sp, src = setup
    cache = SourceCache.build(src.model, sp.train, "video", tmp_path, fields=("pooled", "logits"), progress=False)
    assert cache.fields == ("logits", "pooled")
    live = LiveSource(src.model, "video")
    # float32, so equal up to the last bit: the cache runs the source in batches of its own, and CPU
    # BLAS rounding depends on the batch size (the audit saw 7.5e-9 at a live batch of 8, 0 at 10)
    for size in (1, 8, 10):
        for batch in make_loader(sp.train, size, shuffle=True, seed=1):
            c, l = cache(batch, torch.device("cpu")), live(batch, torch.device("cpu"))
            assert c.k is None and c.v is None
            torch.testing.assert_close(c.logits, l.logits, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(c.pooled, l.pooled, rtol=1e-6, atol=1e-6)
            assert torch.equal(c.correct, l.correct)
    keys = {cache_key(src.model, sp.train, "video", f) for f in (("k", "v"), ("logits",), ("logits", "pooled"))}
    assert len(keys) == 3 and cache_key(src.model, sp.train, "video", ("v", "k")) in keys
    with pytest.raises(ValueError, match="subset of"):
        SourceCache.build(src.model, sp.train, "video", tmp_path, fields=("q",), progress=False)


def test_bad_method_arguments(setup):
    sp, src = setup
    m = new_model(sp, 0)
    with pytest.raises(ValueError, match="unknown transfer method 'kl'"):
        fit_transfer(m, src.model, sp.train, sp.val, lam=1.0, method="kl", preset=P)
    with pytest.raises(ValueError, match="not both"):
        fit_transfer(m, src.model, sp.train, sp.val, lam=1.0, method="kd", loss="other", preset=P)
    with pytest.raises(ValueError, match="not taken by 'kd'"):
        fit_transfer(m, src.model, sp.train, sp.val, lam=1.0, method="kd", options={"proj_dim": 3}, preset=P)
    with pytest.raises(ValueError, match="parameters of its own"):
        fit_transfer(m, src.model, sp.train, sp.val, lam=1.0, method="none", monitor="fitnet", preset=P)
    with pytest.raises(TypeError, match="must return an objectives.SourceOutput"):
        fit_transfer(m, lambda b, d: [1, 2], sp.train, sp.val, lam=1.0, source_modality="video", preset=P,
                     progress=False)
    assert isinstance(LiveSource(src.model, "video")(next(iter(make_loader(sp.train, 4, False))),
                                                     torch.device("cpu")), SourceOutput)


class PartialSource(WrongSource):
    """The real frozen source, reported right on the samples of classes 0-2 only (so the number of
    masked-in samples varies from batch to batch)."""

    def __call__(self, batch, device):
        s = self.live(batch, device)
        return s._replace(correct=batch["label"].to(s.correct.device) < 3)


def test_epoch_statistics_are_means_over_the_samples_they_count(setup):
    """train_ca is the mean of L_CA over every masked-in sample of the epoch and train_mask_frac the
    share of samples masked in: computed here from per-sample losses of a hand-written loop of the
    same run (one epoch, the same batches). Before, each batch's masked mean was weighted by the
    batch's size, so a batch with few counted samples (or none, logged as 0) weighed as a full one."""
    sp, src = setup
    lam, seed = 0.7, 3
    res = fit_transfer(new_model(sp, seed), PartialSource(src.model.cpu()), sp.train, sp.val, lam=lam, method="dcat",
                       source_modality="video", preset=P, epochs=1, seed=seed, progress=False, device="cpu")
    model = new_model(sp, seed)
    seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=P.lr, weight_decay=P.weight_decay)
    model.train()
    per_sample, kept, ce_sum, n = [], 0, 0.0, 0
    counts = []
    for batch in make_loader(sp.train, P.batch_size, shuffle=True, seed=seed):
        out = model(batch["imu"])
        with torch.no_grad():
            s = src.model(batch["video"])
        correct = batch["label"] < 3
        for i in torch.nonzero(correct).flatten().tolist():               # this sample's own Eq. (7)
            per_sample.append(float(cross_attention_loss(out.k[i:i + 1], out.v[i:i + 1], s.k[i:i + 1],
                                                         s.v[i:i + 1])))
        ce = F.cross_entropy(out.logits, batch["label"])
        loss = ce + lam * cross_attention_loss(out.k, out.v, s.k, s.v, correct)
        opt.zero_grad()
        loss.backward()
        opt.step()
        kept, ce_sum, n = kept + int(correct.sum()), ce_sum + float(ce) * len(correct), n + len(correct)
        counts.append(int(correct.sum()))
    assert same_state(res.model, model)                                    # the same run
    assert len(set(counts)) > 1                                            # the counts vary between batches
    h = res.history.iloc[0]
    assert h["train_ca"] == pytest.approx(np.mean(per_sample), rel=1e-5)
    assert h["train_mask_frac"] == pytest.approx(kept / n, rel=1e-6)
    assert h["train_ce"] == pytest.approx(ce_sum / n, rel=1e-6)


def test_the_baselines_monitored_l_ca_is_the_masked_eq7_mean(setup):
    """method="none", monitor="dcat" (the baseline's measured L_CA, notebook 03's and FINDINGS'
    reference for alignment) logs the mean of Eq. (7) over the samples the source gets right, of
    the baseline's own training (cross-entropy alone): a hand-written loop of the same epoch. A
    monitor built without MCMA logged another number and no test saw it."""
    sp, src = setup
    seed = 3
    res = fit_transfer(new_model(sp, seed), PartialSource(src.model.cpu()), sp.train, sp.val, lam=1.0,
                       method="none", monitor="dcat", source_modality="video", preset=P, epochs=1, seed=seed,
                       progress=False, device="cpu")
    model = new_model(sp, seed)
    seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=P.lr, weight_decay=P.weight_decay)
    model.train()
    kept, everyone = [], []
    for batch in make_loader(sp.train, P.batch_size, shuffle=True, seed=seed):
        out = model(batch["imu"])
        with torch.no_grad():
            s = src.model(batch["video"])
            for i in range(len(batch["label"])):                      # this sample's own Eq. (7)
                ca = float(cross_attention_loss(out.k[i:i + 1], out.v[i:i + 1], s.k[i:i + 1], s.v[i:i + 1]))
                everyone.append(ca)
                if batch["label"][i] < 3:                             # PartialSource: right on classes 0-2
                    kept.append(ca)
        loss = F.cross_entropy(out.logits, batch["label"])            # the baseline: no transfer term
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert same_state(res.model, model)
    h = res.history.iloc[0]
    assert h["train_ca"] == pytest.approx(np.mean(kept), rel=1e-5)
    assert abs(np.mean(kept) - np.mean(everyone)) > 1e-4                # the mask changes the number


def test_a_skipped_contrastive_batch_adds_nothing_to_train_nce(setup, monkeypatch):
    """A last batch of one sample has no InfoNCE (skipped, contributes 0 to the loss); the epoch's
    train_nce is the mean over the samples of the batches that had one, from the values the
    objective computed (recorded here). Before, the skipped batch's sample was counted as a 0."""
    from dcatkit.objectives import Contrastive

    sp, src = setup
    n = P.batch_size * 2 + 1
    train = sp.train.subset(np.arange(n))
    seen = []
    loss = Contrastive.loss

    def recording(self, target, source, weight):
        skipped = self.skipped_batches
        v = loss(self, target, source, weight)
        seen.append((float(v), len(weight), self.skipped_batches > skipped))
        return v

    monkeypatch.setattr(Contrastive, "loss", recording)
    with pytest.warns(UserWarning, match="batch of 1 sample"):
        res = fit_transfer(new_model(sp, 2), src.model, train, sp.val, lam=0.5, method="contrastive", mcma=False,
                           source_modality="video", preset=P, epochs=1, seed=2, progress=False, device="cpu",
                           source_cache=False)
    assert [(b, skip) for _, b, skip in seen] == [(P.batch_size, False), (P.batch_size, False), (1, True)]
    used = [(v, b) for v, b, skip in seen if not skip]
    expect = sum(v * b for v, b in used) / sum(b for _, b in used)
    assert res.history["train_nce"].iloc[0] == pytest.approx(expect, rel=1e-6)


def test_the_cache_refuses_repeated_ids_and_other_datasets(setup, capsys):
    """The cache finds a sample's source outputs by id: two samples with one id both read the last
    one's (silently wrong K/V, logits and MCMA bit), and a Subset has no ids (a bare AttributeError).
    source_cache=True refuses both with the reason; "auto" runs the source live, as it must."""
    from torch.utils.data import Subset

    sp, src = setup
    tr = sp.train.subset(np.arange(24))
    tr.ids = [f"s{i % 12}" for i in range(24)]
    kw = dict(lam=0.5, method="kd", source_modality="video", preset=P, epochs=1, seed=1, progress=False,
              device="cpu")
    with pytest.raises(ValueError, match=r"sample ids must be unique.*12 repeat \('s0' x2"):
        fit_transfer(new_model(sp, 1), src.model, tr, sp.val, source_cache=True, **kw)
    auto = fit_transfer(new_model(sp, 1), src.model, tr, sp.val, source_cache="auto", **kw)
    live = fit_transfer(new_model(sp, 1), src.model, tr, sp.val, source_cache=False, **kw)
    assert "runs live at every step" in capsys.readouterr().out
    assert same_state(auto.model, live.model)
    assert auto.history["train_mask_frac"].tolist() == live.history["train_mask_frac"].tolist()
    sub = Subset(sp.train, range(24))
    with pytest.raises(ValueError, match="reads a PairedDataset's ids and arrays; the training set is a Subset"):
        fit_transfer(new_model(sp, 1), src.model, sub, sp.val, source_cache=True, **kw)
    fit_transfer(new_model(sp, 1), src.model, sub, sp.val, source_cache="auto", **kw)   # runs (live)


def test_a_cache_with_repeated_ids_is_refused_when_built_or_read(setup, tmp_path):
    """SourceCache.build (called directly, not through fit_transfer) refuses repeated ids, and a
    cache folder whose ids repeat is refused when read."""
    import json

    sp, src = setup
    tr = sp.train.subset(np.arange(24))
    tr.ids = [f"s{i % 12}" for i in range(24)]
    with pytest.raises(ValueError, match="SourceCache.build: the training set's sample ids must be unique"):
        SourceCache.build(src.model, tr, "video", tmp_path, progress=False)
    ok = SourceCache.build(src.model, sp.train.subset(np.arange(24)), "video", tmp_path, progress=False)
    meta = json.loads((ok.folder / "meta.json").read_text())
    meta["ids"] = [f"s{i % 12}" for i in range(24)]
    (ok.folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="holds 24 samples under 12 ids"):
        SourceCache(ok.folder, "video")


def test_the_objectives_initial_parameters_follow_the_runs_seed(setup, monkeypatch):
    """fitnet's regressor is drawn from the run's seed= (not the preset's): the objective
    fit_transfer builds is the one make_objective builds after torch.manual_seed(seed), so two
    seeds give two initial regressors and one seed the same one. The run is stopped as soon as
    the objective is built (its init is what is pinned, not training)."""
    import dcatkit.train as train_mod
    from dcatkit.objectives import make_objective

    sp, src = setup

    class Built(Exception):
        pass

    def capture(*a, **kw):
        raise Built({k: v.clone() for k, v in make_objective(*a, **kw).state_dict().items()})

    monkeypatch.setattr(train_mod, "make_objective", capture)

    def initial(seed):
        with pytest.raises(Built) as e:
            fit_transfer(new_model(sp, 0), src.model, sp.train, sp.val, lam=1.0, method="fitnet", preset=P,
                         seed=seed, progress=False, device="cpu")
        return e.value.args[0]

    d = src.model.config["d_attn"]
    for seed in (P.seed + 1, P.seed + 2):
        torch.manual_seed(seed)
        expected = make_objective("fitnet", d_target=d, d_source=d).state_dict()
        got = initial(seed)
        assert got.keys() == expected.keys() == {"regressor.weight", "regressor.bias"}
        assert all(torch.equal(got[k], expected[k]) for k in got)
        assert all(torch.equal(got[k], initial(seed)[k]) for k in got)        # the same seed: the same init
    assert not torch.equal(initial(P.seed + 1)["regressor.weight"], initial(P.seed + 2)["regressor.weight"])


def test_a_prebuilt_pooled_cache_is_a_fitnet_source(setup, tmp_path):
    """A SourceCache built by hand (the pooled output) and passed as the source: its d_attn is the
    source's attention size, read from the cached array, so fitnet builds its regressor
    d_t -> d_s and trains, the same run as with the live source (the cache's pooled outputs are
    the live ones up to float32 rounding of another batch size)."""
    sp, src = setup
    d_s = src.model.attention.d_out
    cache = SourceCache.build(src.model, sp.train, "video", tmp_path, fields=("pooled",), progress=False)
    assert cache.d_attn == d_s == src.model.config["d_attn"]
    kw = dict(lam=1.0, method="fitnet", preset=P, seed=5, progress=False, device="cpu")
    res = fit_transfer(new_model(sp, 5), cache, sp.train, sp.val, source_modality="video", **kw)
    assert res.objective.regressor.weight.shape == (d_s, new_model(sp, 5).attention.d_out)
    assert np.isfinite(res.history["train_fitnet"]).all() and (res.history["train_fitnet"] > 0).all()
    live = fit_transfer(new_model(sp, 5), src.model, sp.train, sp.val, source_cache=False, **kw)
    np.testing.assert_allclose(res.history["train_fitnet"], live.history["train_fitnet"], rtol=1e-4)
