"""Several frozen sources (issue 10, section 2): L = CE + sum_s lam_s * L_s (Eq. 19 with one
term per source), each L_s masked by its own source's correctness (MCMA per source).
A list of one source is the single-source run bit for bit; two sources are the hand-written
sum of two masked terms; each source is cached on its own; resume keeps every source's
objective parameters; bad input is named."""
import json

import pytest
import torch
import torch.nn.functional as F

from dcatkit import train
from dcatkit.__main__ import _lams, main
from dcatkit.data.dataset import Splits
from dcatkit.experiment import train_transfer, train_unimodal
from dcatkit.losses import cross_attention_loss
from dcatkit.provenance import SourceMismatch
from dcatkit.train import fit_transfer, make_loader, seed_everything
from helpers import TINY, same_state, tiny_splits
from helpers import new_imu_model as new_model

P = TINY["imu"]


@pytest.fixture(scope="module")
def setup():
    sp = tiny_splits(96, modalities=("imu", "video", "audio"))
    video = train_unimodal(sp, "video", preset=TINY["video"], seed=0, progress=False)
    audio = train_unimodal(sp, "audio", preset=TINY["audio"], seed=0, progress=False)
    return sp, video, audio


def numbers(history):
    return history.drop(columns=[c for c in history.columns if c.endswith("time_s")])


@pytest.mark.parametrize("method", ["dcat", "fitnet"])
def test_one_source_in_a_list_is_the_single_source_run(setup, tmp_path, method):
    """fit_transfer([source]) == fit_transfer(source): weights, history and learned maps, bit for bit."""
    sp, video, _ = setup
    kw = dict(lam=0.7, method=method, preset=P, seed=5, progress=False, device="cpu", cache_dir=tmp_path)
    one = fit_transfer(new_model(sp, 5), video.model, sp.train, sp.val, **kw)
    listed = fit_transfer(new_model(sp, 5), [video.model], sp.train, sp.val, **kw)
    assert same_state(one.model, listed.model)
    assert numbers(one.history).equals(numbers(listed.history))
    assert "train_mask_frac" in listed.history and "train_mask_frac_video" not in listed.history
    for a, b in zip(one.objective.parameters(), listed.objective["video"].parameters(), strict=True):
        assert torch.equal(a, b)
    # through train_transfer: sources=[run] with a lam dict == the positional single-source call
    a = train_transfer(sp, video, "imu", lam=0.5, preset=P, seed=2, progress=False, device="cpu")
    b = train_transfer(sp, sources=[video], target="imu", lam={"video": 0.5}, preset=P, seed=2, progress=False,
                       device="cpu")
    assert same_state(a.model, b.model) and numbers(a.history).equals(numbers(b.history))
    assert a.test["f1"] == b.test["f1"]


def test_two_sources_are_the_sum_of_two_masked_terms(setup):
    """One Adam step of fit_transfer([video, audio], lam={video: lv, audio: la}) == a hand-written
    step of CE + lv * L_CA(video; video's mask) + la * L_CA(audio; audio's mask): the logged loss
    and terms (computed at the start weights) and the weights after the step, bit for bit on CPU."""
    sp, video, audio = setup
    lv, la, seed = 0.7, 0.3, 3
    one_batch = sp.train.subset(range(P.batch_size))                 # one batch: one step
    res = fit_transfer(new_model(sp, seed), [video.model, audio.model], one_batch, sp.val,
                       lam={"video": lv, "audio": la}, preset=P, epochs=1, seed=seed, source_cache=False,
                       progress=False, device="cpu")
    model = new_model(sp, seed)
    seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=P.lr, weight_decay=P.weight_decay)
    model.train()
    (batch,) = list(make_loader(one_batch, P.batch_size, shuffle=True, seed=seed))
    out = model(batch["imu"])
    with torch.no_grad():               # frozen as fit_transfer freezes them (it gives them back unfrozen;
        # the CPU kernels chosen for parameters that require grad can differ in the last bits)
        sv = video.model.eval().requires_grad_(False)(batch["video"])
        sa = audio.model.eval().requires_grad_(False)(batch["audio"])
    mask_v = sv.logits.argmax(1) == batch["label"]                                  # Eq. (16), per source
    mask_a = sa.logits.argmax(1) == batch["label"]
    assert not torch.equal(mask_v, mask_a), "the test needs sources that are right on different samples"
    ca_v = cross_attention_loss(out.k, out.v, sv.k, sv.v, mask_v)                   # Eq. (17)
    ca_a = cross_attention_loss(out.k, out.v, sa.k, sa.v, mask_a)
    loss = F.cross_entropy(out.logits, batch["label"]) + lv * ca_v + la * ca_a      # Eq. (19), two terms
    h = res.history.iloc[0]
    assert h["train_ca_video"] == pytest.approx(ca_v.item(), rel=1e-6)
    assert h["train_ca_audio"] == pytest.approx(ca_a.item(), rel=1e-6)
    assert h["train_mask_frac_video"] == pytest.approx(mask_v.float().mean().item())
    assert h["train_mask_frac_audio"] == pytest.approx(mask_a.float().mean().item())
    assert h["train_loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert "train_ca" not in res.history and "train_mask_frac" not in res.history
    opt.zero_grad()
    loss.backward()
    opt.step()
    got, want = res.model.state_dict(), model.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_the_order_of_the_sources_changes_nothing(setup):
    """fitnet learns one map per source, initialised from the run's seed: each source's map gets the
    same start whatever the list's order (they were drawn in list order, so swapping the list
    changed every weight), and the run is the same bit for bit."""
    sp, video, audio = setup
    kw = dict(lam={"video": 0.7, "audio": 0.3}, method="fitnet", preset=P, seed=5, progress=False, device="cpu",
              source_cache=False)
    va = fit_transfer(new_model(sp, 5), [video.model, audio.model], sp.train, sp.val, **kw)
    av = fit_transfer(new_model(sp, 5), [audio.model, video.model], sp.train, sp.val, **kw)
    for m in ("video", "audio"):
        for a, b in zip(va.objective[m].parameters(), av.objective[m].parameters(), strict=True):
            assert torch.equal(a, b), m
    assert same_state(va.model, av.model)
    assert numbers(va.history).equals(numbers(av.history)[list(numbers(va.history).columns)])


@pytest.mark.parametrize("method", ["dcat", "fitnet", "contrastive"])
def test_a_source_with_lam_0_changes_nothing(setup, method):
    """lam_s = 0 adds 0 * L_s: the target is the run without that source, bit for bit. Objectives
    with a learned map (fitnet, contrastive) drew every source's map from one random stream in
    the sources' name order, so an 'audio' source with lam 0 moved the 'video' map's start and
    changed the target (max weight difference 7e-3 fitnet, 9e-3 contrastive after 2 epochs); each map now starts from
    the run's seed alone."""
    sp, video, audio = setup
    kw = dict(method=method, preset=P, seed=5, progress=False, device="cpu", source_cache=False)
    alone = fit_transfer(new_model(sp, 5), [video.model], sp.train, sp.val, lam={"video": 0.7}, **kw)
    with_0 = fit_transfer(new_model(sp, 5), [audio.model, video.model], sp.train, sp.val,
                          lam={"video": 0.7, "audio": 0.0}, **kw)
    assert same_state(alone.model, with_0.model)
    for a, b in zip(alone.objective["video"].parameters(), with_0.objective["video"].parameters(), strict=True):
        assert torch.equal(a, b)


def test_each_source_is_cached_and_the_result_is_the_live_run(setup, tmp_path):
    sp, video, audio = setup
    kw = dict(lam={"video": 1.0, "audio": 0.5}, method="kd", preset=P, seed=1, progress=False, device="cpu")
    cached = fit_transfer(new_model(sp, 1), [video.model, audio.model], sp.train, sp.val, cache_dir=tmp_path,
                          **kw)
    live = fit_transfer(new_model(sp, 1), [video.model, audio.model], sp.train, sp.val, source_cache=False, **kw)
    folders = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert sorted(json.loads((f / "meta.json").read_text())["modality"] for f in folders) == ["audio", "video"]
    assert same_state(cached.model, live.model)           # kd reads float32 logits: the cache is exact
    assert {"train_kd_video", "train_kd_audio"} <= set(cached.history.columns)


def test_resume_state_holds_every_sources_objective(setup, tmp_path, monkeypatch):
    """fitnet has a learned map per source: the saved state holds both, and an interrupted
    two-source run resumes to the uninterrupted result, bit for bit on CPU."""
    sp, video, audio = setup
    kw = dict(lam={"video": 1.0, "audio": 0.5}, method="fitnet", preset=P, epochs=2, seed=4, progress=False,
              device="cpu", cache_dir=tmp_path / "cache")
    ref = fit_transfer(new_model(sp, 4), [video.model, audio.model], sp.train, sp.val, **kw)
    n_params = sum(len(list(o.parameters())) for o in ref.objective.values())
    assert n_params == 4                                             # W and b for each source
    real, saved = train._save_state, []

    def save(path, state):
        saved.append(state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        real(path, state)
    monkeypatch.setattr(train, "_save_state", save)
    with pytest.raises(KeyboardInterrupt):
        fit_transfer(new_model(sp, 4), [video.model, audio.model], sp.train, sp.val,
                     checkpoint=tmp_path / "t.pt", **kw)
    monkeypatch.undo()
    assert len(saved[0]["extra_params"]) == n_params
    res = fit_transfer(new_model(sp, 4), [video.model, audio.model], sp.train, sp.val,
                       checkpoint=tmp_path / "t.pt", resume=True, **kw)
    assert same_state(res.model, ref.model)
    for m in ("video", "audio"):
        for a, b in zip(res.objective[m].parameters(), ref.objective[m].parameters(), strict=True):
            assert torch.equal(a, b)


def test_bad_multi_source_input(setup):
    sp, video, audio = setup
    kw = dict(preset=P, progress=False, epochs=1)
    with pytest.raises(ValueError, match=r"\['audio'\] are not sources"):
        train_transfer(sp, sources=[video], target="imu", lam={"video": 1.0, "audio": 0.5}, **kw)
    with pytest.raises(ValueError, match=r"\['audio'\] have no lambda"):
        train_transfer(sp, sources=[video, audio], target="imu", lam={"video": 1.0}, **kw)
    with pytest.raises(ValueError, match="same modality"):
        train_transfer(sp, sources=[video, video], target="imu", **kw)
    # a generator is read once: it reaches the per-source checks (it was used up by the emptiness check
    # and then refused as "an empty list")
    with pytest.raises(ValueError, match="same modality"):
        train_transfer(sp, sources=(s for s in [video, video]), target="imu", **kw)
    imu = train_unimodal(sp, "imu", preset=P, seed=0, progress=False, epochs=1)
    with pytest.raises(SourceMismatch, match="both 'imu'"):
        train_transfer(sp, sources=[video, imu], target="imu", **kw)
    leaky = train_unimodal(Splits(sp.val, sp.test, sp.train), "audio", preset=TINY["audio"], seed=0, progress=False)
    with pytest.raises(SourceMismatch, match="leakage"):          # every source is checked, not only the first
        train_transfer(sp, sources=[video, leaky], target="imu", **kw)
    with pytest.raises(ValueError, match="not both"):
        train_transfer(sp, video, "imu", sources=[audio], **kw)
    with pytest.raises(ValueError, match="needs the target modality"):
        train_transfer(sp, sources=[video], **kw)
    with pytest.raises(ValueError, match=r"lam\['audio'\] must be a finite number"):
        train_transfer(sp, sources=[video, audio], target="imu", lam={"video": 1.0, "audio": -1.0}, **kw)
    with pytest.raises(ValueError, match="one distinct modality each"):
        fit_transfer(new_model(sp, 0), [video.model, video.model], sp.train, sp.val, lam=1.0, preset=P)
    # source_modality naming the sources in the wrong order: refused before anything runs, naming
    # each model's own modality (it crashed inside the video encoder while caching "audio" with it)
    with pytest.raises(SourceMismatch, match=r"source 0 is a 'video' model, not a 'audio' one.*source_modality "
                                             r"names 'audio' for it.*source_modality=\['video', 'audio'\]"):
        fit_transfer(new_model(sp, 0), [video.model, audio.model], sp.train, sp.val, lam=1.0, preset=P,
                     source_modality=["audio", "video"], progress=False)
    with pytest.raises(ValueError, match=r"the target model \('imu' model\) takes inputs .* 'audio' inputs"):
        fit_transfer(new_model(sp, 0), video.model, sp.train, sp.val, lam=1.0, preset=P, modality="audio",
                     progress=False)
    with pytest.raises(ValueError, match=r"the model \('imu' model\) takes inputs .* 'video' inputs"):
        train.fit(new_model(sp, 0), sp.train, sp.val, modality="video", preset=P, progress=False)


def test_fit_transfer_refuses_a_source_of_other_classes(setup):
    """MCMA compares a source's argmax with the labels by index: fit_transfer took a second source
    with one class more, or with the data's classes in another order (recorded in its provenance),
    and masked by the wrong classes without a word (train_transfer's load_source checked them;
    fit_transfer did not). Now each is refused, naming the source, before anything runs."""
    import copy

    from dcatkit.model import build_model

    sp, video, audio = setup
    kw = dict(lam=1.0, preset=P, progress=False, device="cpu", source_cache=False)
    shuffled = copy.deepcopy(audio.model)
    shuffled.provenance = {**audio.model.provenance, "classes": list(reversed(sp.classes))}
    with pytest.raises(ValueError, match=rf"source 1 \('audio' model\) has {len(sp.classes)} classes .*by index"):
        fit_transfer(new_model(sp, 0), [video.model, shuffled], sp.train, sp.val, **kw)
    more = build_model("video", len(sp.classes) + 1, sp.train.input_shape("video"), TINY["video"])
    with pytest.raises(ValueError, match=rf"source 0 \('video' model\) has {len(sp.classes) + 1} classes"):
        fit_transfer(new_model(sp, 0), [more, audio.model], sp.train, sp.val, **kw)
    with pytest.raises(ValueError, match=rf"the source \('video' model\) has {len(sp.classes) + 1} classes"):
        fit_transfer(new_model(sp, 0), more, sp.train, sp.val, **kw)


def test_cli_lams_and_two_source_checkpoints(tmp_path, capsys):
    assert _lams([]) == 1.0 and _lams(["0.5"]) == 0.5
    assert _lams(["video=1", "audio=0.5"]) == {"video": 1.0, "audio": 0.5}
    for bad in (["1", "2"], ["video=1", "0.5"], ["video=x"], ["video=1", "video=2"]):
        with pytest.raises(SystemExit):
            _lams(bad)
    common = ["--n-samples", "120", "--epochs", "1", "--device", "cpu"]
    for m in ("video", "audio"):
        assert main(["train", "--modality", m, "--out", str(tmp_path / f"{m}.pt"), *common]) == 0
    out = tmp_path / "imu.pt"
    assert main(["transfer", "--source-ckpt", str(tmp_path / "video.pt"), "--source-ckpt",
                 str(tmp_path / "audio.pt"), "--target", "imu", "--lam", "video=1", "--lam", "audio=0.25",
                 "--out", str(out), *common]) == 0
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["lam"] == {"video": 1.0, "audio": 0.25} and meta["source_modality"] == ["video", "audio"]
    assert '"f1"' in capsys.readouterr().out


def test_a_source_reads_only_its_own_modality_and_kv_alignment_needs_one_d(tmp_path):
    """Two sensors of one shape (acc, gyro): a source model named for the other one ran on its
    inputs and masked by them without a word (only shapes were compared); and a source whose
    attention size is not the target's failed at the first step, after every cache was built,
    naming no source."""
    import numpy as np

    from dcatkit.data import from_arrays
    from dcatkit.experiment import _build

    rng = np.random.default_rng(0)
    arrays = {m: rng.normal(size=(24, 3, 16)).astype(np.float32) for m in ("acc", "gyro")}
    arrays["emg"] = rng.normal(size=(24, 2, 16)).astype(np.float32)
    sp = from_arrays(arrays, np.repeat(np.arange(4), 6), groups="samples",
                     kinds={m: "timeseries" for m in arrays})
    p = P.with_(epochs=1)
    acc, gyro, target = (_build(m, sp.train, p) for m in ("acc", "gyro", "emg"))
    kw = dict(lam=1.0, preset=p, progress=False, device="cpu", cache_dir=tmp_path / "cache")
    with pytest.raises(SourceMismatch, match=r"source 0 is a 'acc' model, not a 'gyro' one.*source_modality names "
                                             r"'gyro' for it.*source_modality=\['acc', 'gyro'\]"):
        fit_transfer(target, [acc, gyro], sp.train, sp.val, source_modality=["gyro", "acc"], **kw)
    with pytest.raises(SourceMismatch, match=r"the source is a 'acc' model, not a 'gyro' one: it would read the "
                                             r"'gyro' inputs as 'acc' ones.*source_modality names 'gyro' for it.*"
                                             r"source_modality='acc'"):
        fit_transfer(target, acc, sp.train, sp.val, source_modality="gyro", **kw)
    wide = _build("gyro", sp.train, p.with_(d_attn=2 * p.d_attn))
    for extra in ({"method": "dcat"}, {}):                              # named, and the default (D-CAT)
        with pytest.raises(ValueError, match=rf"source 'gyro' has attention size d = {2 * p.d_attn} and the "
                                             rf"target d = {p.d_attn}"):
            fit_transfer(target, [acc, wide], sp.train, sp.val, **extra, **kw)
    with pytest.raises(ValueError, match=rf"source 'gyro' has attention size d = {2 * p.d_attn}.*monitor 'dcat'"):
        fit_transfer(target, [acc, wide], sp.train, sp.val, method="kd", monitor="dcat", **kw)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())   # before any cache
    # what aligns through logits (kd) or a learned map (fitnet) takes any d
    for method in ("kd", "fitnet"):
        res = fit_transfer(target, [acc, wide], sp.train, sp.val, method=method, **kw)
        assert len(res.history) == 1
