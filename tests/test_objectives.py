"""Transfer objectives (dcatkit.objectives) against straightforward references:
hand-computed values, per-sample loops, closed-form gradients, gradcheck, and the
MCMA mask semantics every objective shares."""
import math

import pytest
import torch
import torch.nn.functional as F

from dcatkit.losses import cross_attention_loss, mean_weights
from dcatkit.model import ClassifierOutput, build_model
from dcatkit.objectives import (METHODS, OBJECTIVES, Combined, Contrastive, FitNet, KD, SourceOutput,
                                make_objective)
from helpers import TINY
from test_losses import naive_loss

DIMS = {"d_target": 6, "d_source": 5}


def batch(b=5, c=4, t_t=3, t_s=4, d=8, d_t=6, d_s=5, seed=0, dtype=torch.float32, correct=None):
    """A target ClassifierOutput and a SourceOutput of random values."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)    # noqa: E731
    target = ClassifierOutput(r(b, c), r(b, t_t, d), r(b, t_t, d), r(b, t_t, d), r(b, d_t))
    if correct is None:
        correct = torch.rand(b, generator=g) < 0.6
    source = SourceOutput(r(b, t_s, d), r(b, t_s, d), correct, r(b, c), r(b, d_s))
    return target, source


def with_grad(target: ClassifierOutput) -> ClassifierOutput:
    return ClassifierOutput(*(x.detach().clone().requires_grad_(True) for x in target))


# ----------------------------------------------------------------------------- registry


def test_every_method_builds_and_reads_what_it_says():
    for m in METHODS:
        obj = make_objective(m, **DIMS)
        assert obj.name == m
        t, s = batch()
        value, stats = obj(t, s)
        assert value.ndim == 0 and torch.isfinite(value)
        for f in obj.needs:        # a source without a field it reads is refused with a clear error
            with pytest.raises(ValueError, match=f"reads the source's '{f}'"):
                obj(t, s._replace(**{f: None}))
    assert make_objective("dcat+kd").needs == ("k", "v", "logits")
    assert make_objective("fitnet", **DIMS).needs == ("pooled",)
    assert set(OBJECTIVES) == {"none", "dcat", "kd", "fitnet", "contrastive"}


def test_bad_names_and_options():
    with pytest.raises(ValueError, match="unknown transfer method 'kl'"):
        make_objective("kl")
    with pytest.raises(ValueError, match="distinct objectives other than 'none'"):
        make_objective("none+kd")
    with pytest.raises(ValueError, match="distinct objectives"):
        make_objective("kd+kd")
    with pytest.raises(ValueError, match=r"\['proj_dim'\] are not taken by 'kd'; it takes \['kd_temperature'\]"):
        make_objective("kd", proj_dim=3)
    with pytest.raises(ValueError, match="fitnet needs d_target and d_source"):
        make_objective("fitnet")
    with pytest.raises(ValueError, match="kd_temperature must be"):
        make_objective("kd", kd_temperature=0)
    with pytest.raises(ValueError, match="nce_temperature must be"):
        make_objective("contrastive", nce_temperature=0.0, **DIMS)
    fit = make_objective("fitnet", **DIMS)
    t, s = batch(d_s=7)
    with pytest.raises(ValueError, match=r"source pooled size of 5: expected \(B, 5\), got \(5, 7\)"):
        fit(t, s)
    t, s = batch(c=4)
    with pytest.raises(ValueError, match="same shape"):
        make_objective("kd")(t, s._replace(logits=s.logits[:, :3]))
    with pytest.raises(ValueError, match="source.correct must be a bool tensor of shape"):
        make_objective("kd")(t, s._replace(correct=s.correct.float()))
    # options reach the part that takes them
    combo = make_objective("dcat+kd", kd_temperature=2.5)
    assert isinstance(combo, Combined) and combo.parts[1].temperature == 2.5


def test_parameters_only_where_learned():
    assert not list(make_objective("dcat").parameters()) and not list(make_objective("kd").parameters())
    fit = make_objective("fitnet", **DIMS)
    assert [p.shape for p in fit.parameters()] == [(5, 6), (5,)]
    learned = make_objective("contrastive", proj_dim=3, **DIMS)
    fixed = make_objective("contrastive", proj_dim=3, learn_temperature=False, **DIMS)
    assert "log_scale" in dict(learned.named_parameters()) and "log_scale" not in dict(fixed.named_parameters())
    assert fixed.temperature == pytest.approx(0.07) and "log_scale" in dict(fixed.named_buffers())


# ----------------------------------------------------------------------------- MCMA, shared by all


@pytest.mark.parametrize("method", [m for m in METHODS if m != "none"])
def test_mask_all_false_is_zero_with_graph(method):
    obj = make_objective(method, **DIMS)
    t, s = batch(correct=torch.zeros(5, dtype=torch.bool))
    t = with_grad(t)
    value, _ = obj(t, s)
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    for x in t:
        assert x.grad is None or torch.count_nonzero(x.grad) == 0


@pytest.mark.parametrize("method", [m for m in METHODS if m != "none"])
def test_mask_all_true_equals_no_mcma_and_mcma_off_ignores_mask(method):
    torch.manual_seed(0)
    on = make_objective(method, mcma=True, **DIMS)
    torch.manual_seed(0)
    off = make_objective(method, mcma=False, **DIMS)        # same initial parameters
    t, s = batch(correct=torch.ones(5, dtype=torch.bool))
    assert torch.allclose(on(t, s)[0], off(t, s)[0], rtol=1e-6, atol=1e-7)
    some = s._replace(correct=torch.tensor([True, False, False, True, False]))
    assert torch.equal(off(t, some)[0], off(t, s)[0])
    assert not torch.allclose(on(t, some)[0], off(t, some)[0])


@pytest.mark.parametrize("method", ["dcat", "kd", "fitnet"])
def test_masked_out_samples_do_not_count(method):
    """The masked mean: value == mean over the masked-in samples of the one-sample values."""
    obj = make_objective(method, **DIMS)
    mask = torch.tensor([True, False, True, True, False])
    t, s = batch(correct=mask)
    one = [obj(ClassifierOutput(*(x[i:i + 1] for x in t)),
               SourceOutput(*(x[i:i + 1] for x in s)))[0] for i in range(5)]
    assert torch.allclose(obj(t, s)[0], torch.stack(one)[mask].mean(), atol=1e-6)
    # changing a masked-out sample changes nothing
    t2 = t._replace(logits=t.logits.clone(), pooled=t.pooled.clone(), k=t.k.clone())
    t2.logits[1] += 100
    t2.pooled[1] += 100
    t2.k[1] *= -3
    assert torch.equal(obj(t2, s)[0], obj(t, s)[0])


def test_explicit_weights_override_the_mask():
    """A caller (e.g. a multi-process mean) may pass the weights itself."""
    obj = make_objective("kd")
    t, s = batch()
    w = torch.tensor([0.1, 0.0, 0.3, 0.2, 0.4], dtype=torch.float64)
    per = torch.stack([obj(ClassifierOutput(*(x[i:i + 1] for x in t)),
                           SourceOutput(*(x[i:i + 1] for x in s)), torch.ones(1))[0] for i in range(5)])
    assert torch.allclose(obj(t, s, w)[0], (w.float() * per).sum(), atol=1e-6)
    assert torch.equal(obj.weights(s), mean_weights(s.correct, 5))
    with pytest.raises(ValueError, match="weight must be a float tensor of shape"):
        obj(t, s, torch.ones(4))


# ----------------------------------------------------------------------------- none, dcat, dcat+kd


def test_none_is_exactly_zero_without_source():
    t, _ = batch()
    value, stats = make_objective("none")(t, SourceOutput(None, None, torch.ones(5, dtype=torch.bool)))
    assert value.item() == 0.0 and not value.requires_grad and stats == {}


@pytest.mark.parametrize("mcma", [True, False])
def test_dcat_is_the_papers_loss(mcma):
    t, s = batch(t_t=5, t_s=3, d=16, seed=3)
    value, stats = make_objective("dcat", mcma=mcma)(t, s)
    mask = s.correct if mcma else None
    assert torch.equal(value, cross_attention_loss(t.k, t.v, s.k, s.v, mask))
    assert torch.allclose(value.double(), naive_loss(t.k, t.v, s.k, s.v, mask), atol=1e-5)
    assert set(stats) == {"ca"}


def test_dcat_plus_kd_is_the_sum():
    t, s = batch(seed=4)
    value, stats = make_objective("dcat+kd", kd_temperature=3.0)(t, s)
    ca, kd = make_objective("dcat")(t, s)[0], make_objective("kd", kd_temperature=3.0)(t, s)[0]
    assert torch.allclose(value, ca + kd, atol=1e-6)
    assert set(stats) == {"ca", "kd"} and torch.equal(stats["ca"], ca) and torch.equal(stats["kd"], kd)


# ----------------------------------------------------------------------------- kd


def test_kd_known_values():
    # p_s = (1/2, 1/2); z_t = (log 3, 0): at T = 1 p_t = (3/4, 1/4), KL = 1/2 log(4/3)
    z_t, z_s = torch.tensor([[math.log(3.0), 0.0]]), torch.zeros(1, 2)
    t = ClassifierOutput(z_t, *([None] * 4))
    s = SourceOutput(None, None, torch.ones(1, dtype=torch.bool), z_s)
    assert make_objective("kd", kd_temperature=1.0)(t, s)[0].item() == pytest.approx(0.5 * math.log(4 / 3), abs=1e-7)
    # at T = 2: p_t = (sqrt3, 1) / (1 + sqrt3); times T^2 = 4
    q = math.sqrt(3) / (1 + math.sqrt(3))
    want = 4 * (0.5 * math.log(0.5 / q) + 0.5 * math.log(0.5 / (1 - q)))
    assert make_objective("kd", kd_temperature=2.0)(t, s)[0].item() == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("temp", [0.5, 1.0, 4.0])
def test_kd_zero_for_equal_logits_and_shift_invariant(temp):
    t, s = batch(seed=5)
    kd = make_objective("kd", kd_temperature=temp, mcma=False)
    assert kd(t, s._replace(logits=t.logits.clone()))[0].item() == pytest.approx(0.0, abs=1e-6)
    shift = torch.randn(5, 1) * 10                 # softmax ignores a per-sample constant
    assert torch.allclose(kd(t._replace(logits=t.logits + shift), s)[0], kd(t, s)[0], atol=1e-5)
    assert kd(t, s)[0].item() > 0


@pytest.mark.parametrize("temp", [0.5, 1.0, 4.0])
def test_kd_gradient_is_hintons(temp):
    """d l_i / d z_t = T (softmax(z_t / T) - softmax(z_s / T)) (Hinton et al. 2015,
    with the T^2 factor), times the sample's masked-mean weight."""
    t, s = batch(seed=6, dtype=torch.float64)
    t = with_grad(t)
    make_objective("kd", kd_temperature=temp)(t, s)[0].backward()
    w = mean_weights(s.correct, 5)[:, None]
    want = w * temp * (torch.softmax(t.logits.detach() / temp, 1) - torch.softmax(s.logits / temp, 1))
    assert torch.allclose(t.logits.grad, want, atol=1e-12)


def test_kd_gradcheck():
    _, s = batch(seed=7, dtype=torch.float64)
    kd = make_objective("kd", kd_temperature=2.0)
    z = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: kd(ClassifierOutput(z, *([None] * 4)), s)[0], (z,))


# ----------------------------------------------------------------------------- fitnet


def test_fitnet_known_value_and_naive_loop():
    fit = FitNet(d_target=2, d_source=2, mcma=False)
    with torch.no_grad():
        fit.regressor.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        fit.regressor.bias.copy_(torch.tensor([0.0, 1.0]))
    t = ClassifierOutput(torch.zeros(2, 3), None, None, None, torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    s = SourceOutput(None, None, torch.ones(2, dtype=torch.bool), None, torch.tensor([[2.0, 2.0], [1.0, 3.0]]))
    # sample 0: W p + b = (2, 2) -> 0; sample 1: (0, 1) vs (1, 3) -> (1 + 4) / 2 = 2.5; mean 1.25
    assert fit(t, s)[0].item() == pytest.approx(1.25)
    # random case against a per-sample, per-feature loop
    fit = make_objective("fitnet", **DIMS)
    t, s = batch(seed=8)
    W, bias = fit.regressor.weight.detach(), fit.regressor.bias.detach()
    vals = []
    for i in range(5):
        if s.correct[i]:
            pred = [sum(W[j, k] * t.pooled[i, k] for k in range(6)) + bias[j] for j in range(5)]
            vals.append(sum((pred[j] - s.pooled[i, j]) ** 2 for j in range(5)) / 5)
    assert fit(t, s)[0].item() == pytest.approx(float(sum(vals) / len(vals)), rel=1e-5)


def test_fitnet_gradients():
    """Closed form: d/dW sum_i w_i mean_j (W p_i + b - s_i)_j^2 = sum_i w_i (2/d_s) r_i p_i^T; and gradcheck."""
    fit = make_objective("fitnet", **DIMS).double()
    t, s = batch(seed=9, dtype=torch.float64)
    fit(t, s)[0].backward()
    w = mean_weights(s.correct, 5)
    r = t.pooled @ fit.regressor.weight.detach().T + fit.regressor.bias.detach() - s.pooled     # (B, d_s)
    assert torch.allclose(fit.regressor.weight.grad, (2 / 5) * (w[:, None] * r).T @ t.pooled, atol=1e-12)
    assert torch.allclose(fit.regressor.bias.grad, (2 / 5) * (w[:, None] * r).sum(0), atol=1e-12)
    p = t.pooled.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: fit(t._replace(pooled=p), s)[0], (p,))


# ----------------------------------------------------------------------------- contrastive


def naive_infonce(s_mat, anchors):
    """Mean over anchors i of (-log softmax_j S[i, j] at j = i  -log softmax_j S[j, i] at j = i) / 2, by loops."""
    b = len(s_mat)
    vals = []
    for i in range(b):
        if not anchors[i]:
            continue
        row = -s_mat[i][i] + math.log(sum(math.exp(s_mat[i][j]) for j in range(b)))
        col = -s_mat[i][i] + math.log(sum(math.exp(s_mat[j][i]) for j in range(b)))
        vals.append((row + col) / 2)
    return sum(vals) / len(vals) if vals else 0.0


def test_contrastive_known_values():
    # zero projections: every similarity is 0, so each term is log B
    c = Contrastive(d_target=3, d_source=3, proj_dim=2, mcma=False)
    with torch.no_grad():
        c.proj_target.weight.zero_()
    t, s = batch(b=4, d_t=3, d_s=3)
    assert c(t, s)[0].item() == pytest.approx(math.log(4), abs=1e-6)
    # identity projections, one-hot embeddings that match: S = I / tau; each term log(1 + e^{-1/tau})
    c = Contrastive(d_target=2, d_source=2, proj_dim=2, nce_temperature=0.5, learn_temperature=False, mcma=False)
    with torch.no_grad():
        c.proj_target.weight.copy_(torch.eye(2)), c.proj_source.weight.copy_(torch.eye(2))
    e = torch.eye(2) * 3.0                                  # normalisation removes the scale
    t = ClassifierOutput(torch.zeros(2, 2), None, None, None, e)
    s = SourceOutput(None, None, torch.ones(2, dtype=torch.bool), None, e)
    assert c(t, s)[0].item() == pytest.approx(math.log(1 + math.exp(-2.0)), abs=1e-6)


def test_contrastive_matches_naive_loop_with_anchor_semantics():
    """Masked-out samples are negatives but not anchors: value == the loop over anchors only."""
    c = make_objective("contrastive", proj_dim=4, nce_temperature=0.2, **DIMS)
    mask = torch.tensor([True, False, True, True, False])
    t, s = batch(seed=10, correct=mask)
    value = c(t, s)[0].item()
    z_t = F.normalize(t.pooled @ c.proj_target.weight.detach().T, dim=1)
    z_s = F.normalize(s.pooled @ c.proj_source.weight.detach().T, dim=1)
    s_mat = ((z_t @ z_s.T) / 0.2).tolist()
    assert value == pytest.approx(naive_infonce(s_mat, mask.tolist()), rel=1e-5)
    # a masked-out sample's source embedding still matters (as a negative) ...
    moved = s._replace(pooled=s.pooled.clone())
    moved.pooled[1] = torch.randn(5) * 5
    assert c(t, moved)[0].item() != pytest.approx(value, rel=1e-4)
    # ... and the batch of anchors only is a different (smaller-batch) problem
    keep = mask.nonzero()[:, 0]
    sub = c(ClassifierOutput(*(x[keep] for x in t)), SourceOutput(*(x[keep] for x in s)))[0].item()
    assert sub != pytest.approx(value, rel=1e-4)


def test_contrastive_gradcheck_and_learned_temperature():
    c = make_objective("contrastive", proj_dim=3, **DIMS).double()
    t, s = batch(seed=11, dtype=torch.float64)
    p = t.pooled.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: c(t._replace(pooled=p), s)[0], (p,))
    names = ("proj_target.weight", "proj_source.weight", "log_scale")
    params = dict(c.named_parameters())
    args = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    f = lambda *a: torch.func.functional_call(c, dict(zip(names, a)), (t, s))[0]    # noqa: E731
    assert torch.autograd.gradcheck(f, args)
    # the learned temperature receives a gradient; the fixed one has none to receive
    c2 = make_objective("contrastive", proj_dim=3, **DIMS)
    c2(*batch(seed=12))[0].backward()
    assert c2.log_scale.grad is not None and c2.log_scale.grad.abs() > 0


def test_contrastive_temperature_is_clamped_at_001():
    """tau >= 0.01 (CLIP): a learned log(1/tau) beyond log(100) acts as tau = 0.01 exactly,
    in the value and in the reported temperature, and receives no gradient past the clamp."""
    torch.manual_seed(0)
    c = make_objective("contrastive", proj_dim=4, mcma=False, **DIMS)
    t, s = batch(seed=13)
    with torch.no_grad():
        c.log_scale.fill_(math.log(1000.0))                  # tau = 0.001 if unclamped
    value = c(t, s)[0]
    z_t = F.normalize(t.pooled @ c.proj_target.weight.detach().T, dim=1)
    z_s = F.normalize(s.pooled @ c.proj_source.weight.detach().T, dim=1)
    at_001 = naive_infonce(((z_t @ z_s.T) / 0.01).tolist(), [True] * 5)
    raw = (z_t @ z_s.T) / 0.001                              # unclamped (math.exp would overflow)
    at_0001 = float(0.5 * (F.cross_entropy(raw, torch.arange(5)) + F.cross_entropy(raw.T, torch.arange(5))))
    assert value.item() == pytest.approx(at_001, rel=1e-5) and at_0001 != pytest.approx(at_001, rel=1e-2)
    assert c.temperature == pytest.approx(0.01)
    value.backward()
    assert c.log_scale.grad.item() == 0.0


def test_contrastive_small_last_batch_is_skipped_loudly_not_a_silent_zero():
    """A batch of 1 has no negative (InfoNCE = log 1 = 0): it is skipped with a warning and
    counted; a batch of 2 (one negative) is used; min_negatives raises the bar."""
    c = make_objective("contrastive", proj_dim=3, mcma=False, **DIMS)
    t, s = batch(b=1, seed=14)
    t = with_grad(t)
    with pytest.warns(UserWarning, match="batch of 1 sample.*min_negatives=1"):
        v, st = c(t, s)
    assert v.item() == 0.0 and v.requires_grad and c.skipped_batches == 1
    assert float(st["nce"][1]) == 0.0                        # its logged InfoNCE counts no sample
    v.backward()                                             # a graph, zero gradients
    assert float(t.pooled.grad.abs().sum()) == 0.0
    t2, s2 = batch(b=2, seed=15)
    v2, st2 = c(t2, s2)
    assert v2.item() > 0 and c.skipped_batches == 1 and not isinstance(st2["nce"], tuple)
    strict = make_objective("contrastive", proj_dim=3, mcma=False, min_negatives=3, **DIMS)
    with pytest.warns(UserWarning, match="batch of 3"):
        assert strict(*batch(b=3, seed=16))[0].item() == 0.0
    assert strict(*batch(b=4, seed=16))[0].item() > 0 and strict.skipped_batches == 1
    with pytest.raises(ValueError, match="min_negatives must be an int >= 1"):
        make_objective("contrastive", min_negatives=0, **DIMS)


def test_contrastive_skipped_batches_are_in_its_state_dict():
    """The count of skipped batches is state a resumed run carries on from (``_extra_state``
    of the state dict, saved with the training state), also inside a combination."""
    c = make_objective("contrastive", proj_dim=3, mcma=False, **DIMS)
    with pytest.warns(UserWarning, match="batch of 1"):
        c(*batch(b=1, seed=14))
    c(*batch(b=1, seed=17))
    assert c.skipped_batches == 2
    fresh = make_objective("contrastive", proj_dim=3, mcma=False, **DIMS)
    fresh.load_state_dict(c.state_dict())
    assert fresh.skipped_batches == 2
    combined = Combined([make_objective("dcat", mcma=False), fresh])
    again = Combined([make_objective("dcat", mcma=False), make_objective("contrastive", proj_dim=3, mcma=False,
                                                                         **DIMS)])
    again.load_state_dict(combined.state_dict())
    assert again.parts[1].skipped_batches == 2


# ----------------------------------------------------------------------------- the model's pooled output


def test_model_pooled_output():
    """pooled is the time-mean of the attention output, before dropout; logits = head(dropout(pooled))."""
    torch.manual_seed(0)
    model = build_model("imu", 8, (6, 64), TINY["imu"]).eval()
    x = torch.randn(3, 6, 64)
    out = model(x)
    att = model.attention(model.encoder(x))
    assert torch.equal(out.pooled, att.out.mean(1))
    assert torch.allclose(out.logits, model.head(out.pooled), atol=1e-6)
    assert out[:4] == (out.logits, out.q, out.k, out.v)       # the first four fields keep their places
    model.train()                          # the head's dropout active: pooled stays the plain mean, logits do not
    model.encoder.eval()                   # (the encoder's own dropout would make the two calls differ)
    att = model.attention(model.encoder(x))
    out = model(x)
    assert torch.allclose(out.pooled, att.out.mean(1), atol=1e-6)
    assert not torch.allclose(out.logits, model.head(out.pooled), atol=1e-3)
    src = SourceOutput.from_output(out, torch.tensor([0, 1, 2]))
    assert torch.equal(src.correct, out.logits.argmax(1) == torch.tensor([0, 1, 2]))
    assert src.pooled is out.pooled and src.logits is out.logits


def test_kd_is_a_module_with_no_state():
    assert isinstance(make_objective("kd"), KD) and make_objective("kd").state_dict() == {}


def test_kd_default_temperature_is_the_tuning_grids():
    """Run identities store the options given, not resolved defaults: a changed default would pair
    old T = 4 runs with new ones as one method. Pinned: KD's default is 4, the tuning grid's value."""
    from dcatkit.experiment import TUNE_KD_TEMPERATURES

    assert make_objective("kd").temperature == 4.0 == TUNE_KD_TEMPERATURES[0]


def test_a_registered_kv_loss_honours_mcma_off():
    """A K/V loss of the older registry (``register_loss``; ``fit_transfer(loss=name)`` wraps it in
    KVLoss) gets no mask with mcma=False: every sample counts even when the source got every one
    wrong (the plain mean of its per-sample terms), and the source's correctness with mcma=True."""
    from dcatkit.losses import LOSSES, get_loss, register_loss
    from dcatkit.objectives import KVLoss

    name = "test-mean-gap"
    assert name not in LOSSES

    def mean_gap(k_t, v_t, k_s, v_s, mask=None):        # per sample: squared gap of the time-means of K and V
        per = (k_t.mean(1) - k_s.mean(1)).square().sum(1) + (v_t.mean(1) - v_s.mean(1)).square().sum(1)
        return (mean_weights(mask, per.shape[0]).to(per.dtype) * per).sum()

    t, wrong = batch(correct=torch.zeros(5, dtype=torch.bool))
    some = wrong._replace(correct=torch.tensor([True, False, False, True, False]))
    try:
        register_loss(name)(mean_gap)
        off = KVLoss(get_loss(name), mcma=False, name=name)
        on = KVLoss(get_loss(name), mcma=True, name=name)
        got = {"off": off(t, wrong)[0].item(), "off_some": off(t, some)[0].item(),
               "on": on(t, wrong)[0].item(), "on_some": on(t, some)[0].item()}
    finally:
        LOSSES.pop(name, None)
    assert name not in LOSSES                                   # the registry as it was

    per = [sum(float(((a[i].mean(0) - b[i].mean(0)) ** 2).sum()) for a, b in ((t.k, wrong.k), (t.v, wrong.v)))
           for i in range(5)]                                   # a plain loop over the samples
    assert per[0] > 0
    assert got["off"] == pytest.approx(sum(per) / 5, rel=1e-6)            # all 5 count, none masked
    assert got["off_some"] == pytest.approx(sum(per) / 5, rel=1e-6)       # the mask is ignored
    assert got["on"] == 0.0                                                # every sample masked out
    assert got["on_some"] == pytest.approx((per[0] + per[3]) / 2, rel=1e-6)


def test_contrastive_default_projection_is_the_smaller_pooled_size():
    """Without proj_dim, contrastive projects both pooled outputs to min(d_t, d_s): d_t = 16 and
    d_s = 64 give g_t 16 -> 16 and g_s 64 -> 16 (no bias) plus the learned log(1/tau)."""
    c = make_objective("contrastive", d_target=16, d_source=64)
    assert c.proj_target.weight.shape == (16, 16) and c.proj_source.weight.shape == (16, 64)
    assert sum(p.numel() for p in c.parameters()) == 16 * 16 + 64 * 16 + 1
    assert make_objective("contrastive", d_target=64, d_source=16).proj_source.weight.shape == (16, 16)
