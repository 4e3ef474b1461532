"""The cross-attention loss (Eqs. 7, 17) against an independent per-sample loop."""
import pytest
import torch

from dcatkit.losses import (LOSSES, _GramLoss, cross_attention_loss, cross_attention_loss_dense, get_loss,
                            mean_weights)


def naive_loss(k_t, v_t, k_s, v_s, mask=None):
    """Straight from the paper, one sample at a time, float64, no epsilon."""
    vals = []
    for i in range(k_t.shape[0]):
        m_t = k_t[i].double().T @ v_t[i].double()
        m_s = k_s[i].double().T @ v_s[i].double()
        vals.append(torch.linalg.matrix_norm(m_t / torch.linalg.matrix_norm(m_t)
                                             - m_s / torch.linalg.matrix_norm(m_s)))
    vals = torch.stack(vals)
    if mask is None:
        return vals.mean()
    return vals[mask].mean() if mask.any() else torch.zeros((), dtype=torch.float64)


def rand(b=4, t_t=5, t_s=7, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, t, d, generator=g) for t in (t_t, t_t, t_s, t_s)]


@pytest.mark.parametrize("method", ["gram", "dense", "auto"])
@pytest.mark.parametrize("t_t,t_s,d", [(5, 7, 16), (30, 30, 64), (40, 3, 8)])
def test_matches_naive(method, t_t, t_s, d):
    args = rand(3, t_t, t_s, d)
    assert torch.allclose(cross_attention_loss(*args, method=method).double(), naive_loss(*args), atol=1e-5)


def test_gram_equals_dense_with_mask():
    args = rand(6, 9, 4, 32, seed=3)
    mask = torch.tensor([True, False, True, True, False, True])
    g = cross_attention_loss(*args, mask=mask, method="gram")
    d = cross_attention_loss_dense(*args, mask=mask)
    assert torch.allclose(g, d, atol=1e-5)
    assert torch.allclose(g.double(), naive_loss(*args, mask), atol=1e-5)


def test_known_values():
    # Orthogonal unit matrices: ||A - B||_F = sqrt(2); opposite: 2; identical: 0.
    k = torch.eye(2).unsqueeze(0)                       # K^T V = V
    v1 = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    v2 = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]])
    assert cross_attention_loss(k, v1, k, v2).item() == pytest.approx(2 ** 0.5, abs=1e-6)
    assert cross_attention_loss(k, v1, k, -v1).item() == pytest.approx(2.0, abs=1e-6)
    assert cross_attention_loss(k, v1, k, v1).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("method", ["gram", "dense"])
def test_zero_for_identical_and_scale_invariant(method):
    k, v, _, _ = rand(4, 6, 6, 16)
    assert cross_attention_loss(k, v, k, v, method=method).item() < 1e-5
    # normalisation: rescaling K or V (per sample, positive) changes nothing
    k2, v2, ks, vs = rand(4, 6, 8, 16, seed=1)
    base = cross_attention_loss(k2, v2, ks, vs, method=method)
    scale = torch.tensor([0.01, 3.0, 100.0, 7.0]).view(4, 1, 1)
    assert torch.allclose(cross_attention_loss(k2 * scale, v2, ks, vs * 5, method=method), base, atol=1e-5)
    # but a negative scale flips the matrix -> a different loss
    assert not torch.allclose(cross_attention_loss(-k2, v2, ks, vs, method=method), base, atol=1e-3)


def test_mask_semantics():
    args = rand(4, 5, 5, 8, seed=2)
    per = torch.stack([cross_attention_loss(*(a[i:i + 1] for a in args)) for i in range(4)])
    mask = torch.tensor([True, False, False, True])
    assert torch.allclose(cross_attention_loss(*args, mask=mask), per[mask].mean(), atol=1e-6)
    # all in == no mask
    assert torch.allclose(cross_attention_loss(*args, mask=torch.ones(4, dtype=torch.bool)),
                          cross_attention_loss(*args), atol=1e-6)
    # masked-out samples do not influence the value at all
    changed = [a.clone() for a in args]
    changed[0][1] = 1000 * torch.randn_like(changed[0][1])
    assert torch.allclose(cross_attention_loss(*changed, mask=mask), cross_attention_loss(*args, mask=mask))


@pytest.mark.parametrize("method", ["gram", "dense"])
def test_explicit_weights(method):
    """weight= is the reduction sum_i w_i L_i; mean_weights(mask) reproduces mask=."""
    args = rand(4, 5, 6, 8, seed=4)
    mask = torch.tensor([False, True, True, False])
    assert torch.equal(mean_weights(mask, 4), torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64))
    assert torch.equal(mean_weights(None, 4), torch.full((4,), 0.25, dtype=torch.float64))
    assert torch.allclose(cross_attention_loss(*args, weight=mean_weights(mask, 4), method=method),
                          cross_attention_loss(*args, mask=mask, method=method), atol=1e-7)
    w = torch.tensor([0.5, 0.0, 2.0, 1.0], dtype=torch.float64)
    per = torch.stack([naive_loss(*(a[i:i + 1] for a in args)) for i in range(4)])
    assert torch.allclose(cross_attention_loss(*args, weight=w, method=method).double(), (w * per).sum(), atol=1e-5)
    with pytest.raises(ValueError, match="pass mask or weight, not both"):
        cross_attention_loss(*args, mask=mask, weight=w, method=method)
    with pytest.raises(ValueError, match="weight must be a float tensor of shape \\(4,\\)"):
        cross_attention_loss(*args, weight=torch.ones(3), method=method)


def test_none_masked_in_is_zero_with_graph():
    k_t, v_t, k_s, v_s = rand(3, 4, 4, 8)
    k_t.requires_grad_(True)
    loss = cross_attention_loss(k_t, v_t, k_s, v_s, mask=torch.zeros(3, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.count_nonzero(k_t.grad) == 0


def test_all_zero_inputs_finite():
    z = torch.zeros(2, 3, 4, requires_grad=True)
    for method in ("gram", "dense"):
        loss = cross_attention_loss(z, z, z, z, method=method)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
        z.grad = None


@pytest.mark.parametrize("method", ["gram", "dense"])
def test_degenerate_inputs_have_their_known_values(method):
    """M / sqrt(||M||^2 + eps^2) sends M = 0 to the zero matrix, so: both sides zero -> L = 0
    (up to eps); a zero target against any source -> L = ||0 - unit matrix|| = 1; and the
    reverse. Both forms, which share no code, must agree on these limits."""
    z = torch.zeros(2, 3, 4)
    k, v, _, _ = rand(2, 3, 3, 4, seed=9)
    assert cross_attention_loss(z, z, z, z, method=method).item() == pytest.approx(0.0, abs=1e-7)
    assert cross_attention_loss(z, z, k, v, method=method).item() == pytest.approx(1.0, abs=1e-6)
    assert cross_attention_loss(k, v, z, z, method=method).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("method", ["gram", "dense"])
@pytest.mark.parametrize("s", [1e-3, 1e-4])
def test_scale_invariant_down_to_tiny_activations(method, s):
    """The epsilon in the normalisation is eps^2 = 1e-16 added to ||M||^2: K and V both scaled by
    1e-3 or 1e-4 (||M||^2 ~ 1e-9 or 1e-13) still give the unscaled loss and the paper's formula."""
    k_t, v_t, k_s, v_s = rand(3, 5, 6, 16, seed=10)
    ref = naive_loss(k_t, v_t, k_s, v_s).item()
    tol = 1e-5 if s == 1e-3 else 1e-3
    assert cross_attention_loss(k_t * s, v_t * s, k_s, v_s, method=method).item() == pytest.approx(ref, abs=tol)
    assert cross_attention_loss(k_t, v_t, k_s * s, v_s * s, method=method).item() == pytest.approx(ref, abs=tol)


@pytest.mark.parametrize("method", ["gram", "dense"])
def test_gradients_reach_only_target_and_match(method):
    k_t, v_t, k_s, v_s = rand(3, 6, 4, 8, seed=5)
    for x in (k_t, v_t, k_s, v_s):
        x.requires_grad_(True)
    # as in training: the source side is detached (frozen); gradient flows to target only
    loss = cross_attention_loss(k_t, v_t, k_s.detach(), v_s.detach(), method=method)
    loss.backward()
    assert k_t.grad.abs().sum() > 0 and v_t.grad.abs().sum() > 0
    assert k_s.grad is None and v_s.grad is None
    # gradient equals the naive formula's gradient
    kt2, vt2 = k_t.detach().clone().requires_grad_(True), v_t.detach().clone().requires_grad_(True)
    naive_loss(kt2, vt2, k_s.detach(), v_s.detach()).backward()
    assert torch.allclose(k_t.grad.double(), kt2.grad.double(), atol=1e-5)
    assert torch.allclose(v_t.grad.double(), vt2.grad.double(), atol=1e-5)


def test_gram_backward_passes_gradcheck():
    """The hand-written backward of the Gram form against finite differences (float64),
    for target and source inputs, with a mask-style weighting that drops a sample."""
    g = torch.Generator().manual_seed(7)
    args = [torch.randn(3, t, 6, generator=g, dtype=torch.float64, requires_grad=True) for t in (5, 5, 4, 4)]
    weight = torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *a: _GramLoss.apply(*a, weight), args)
    # unequal T and d larger than T (the regime the Gram form is for)
    args = [torch.randn(2, t, 12, generator=g, dtype=torch.float64, requires_grad=True) for t in (3, 3, 7, 7)]
    assert torch.autograd.gradcheck(lambda *a: _GramLoss.apply(*a, torch.full((2,), 0.5, dtype=torch.float64)),
                                    args)


def test_mixed_dtypes_and_source_gradients_match_dense():
    """float16 source (as read from the source cache) with a float32 target; and a source
    that is not frozen gets the same gradients from both forms."""
    k_t, v_t, k_s, v_s = rand(3, 6, 4, 8, seed=9)
    loss16 = cross_attention_loss(k_t, v_t, k_s.half(), v_s.half(), method="gram")
    assert loss16.dtype == torch.float32
    assert torch.allclose(loss16, cross_attention_loss_dense(k_t, v_t, k_s.half().float(), v_s.half().float()),
                          atol=1e-5)
    grads = []
    for method in ("gram", "dense"):
        xs = [x.clone().requires_grad_(True) for x in (k_t, v_t, k_s, v_s)]
        cross_attention_loss(*xs, method=method).backward()
        grads.append([x.grad for x in xs])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("noise", [0.0, 1e-4, 1e-2, 0.03, 0.05, 0.07, 0.1, 0.3, 1.0, 3.0])
def test_accurate_at_every_loss_level(noise):
    """Float32 inputs, target = source + noise: L = 0, 1.5e-4, 0.015, 0.074 (float64
    recompute), then 0.103 just past the switch at L = 0.1, 0.15, 0.42, 1.03, 1.36
    (float32): value and gradients agree with the float64 loop."""
    g = torch.Generator().manual_seed(11)
    k_s, v_s = (torch.randn(4, 6, 32, generator=g) for _ in range(2))
    k_t = (k_s + noise * torch.randn(4, 6, 32, generator=g)).requires_grad_(True)
    v_t = (v_s + noise * torch.randn(4, 6, 32, generator=g)).requires_grad_(True)
    loss = cross_attention_loss(k_t, v_t, k_s, v_s, method="gram")
    loss.backward()
    kt2, vt2 = k_t.detach().clone().requires_grad_(True), v_t.detach().clone().requires_grad_(True)
    ref = naive_loss(kt2, vt2, k_s, v_s)
    assert abs(loss.item() - ref.item()) < 1e-5, (loss.item(), ref.item())
    if 0 < ref.item() < 0.1:             # recomputed in float64: float32's ~2e-7 / L^2 relative error is gone
        assert abs(loss.item() - ref.item()) <= 1e-6 * ref.item(), (loss.item(), ref.item())
    if noise > 0:                        # at L = 0 exactly the gradient of the norm is undefined
        ref.backward()
        scale = kt2.grad.abs().max().item()
        assert torch.allclose(k_t.grad.double(), kt2.grad.double(), atol=1e-5 * max(1.0, scale))
        assert torch.allclose(v_t.grad.double(), vt2.grad.double(), atol=1e-5 * max(1.0, scale))


@pytest.mark.parametrize("mask", [None, [True, True, False, True, True]])
def test_mixed_batch_near_and_far_from_zero(mask):
    """Samples at L ~ 0 (recomputed in float64) and L ~ 1 (float32) in one batch, some masked."""
    g = torch.Generator().manual_seed(12)
    k_s, v_s = (torch.randn(5, 6, 32, generator=g) for _ in range(2))
    noise = torch.tensor([0.0, 1e-3, 1.0, 1e-4, 3.0]).view(5, 1, 1)
    k_t = (k_s + noise * torch.randn(5, 6, 32, generator=g)).requires_grad_(True)
    v_t = (v_s + noise * torch.randn(5, 6, 32, generator=g)).requires_grad_(True)
    m = None if mask is None else torch.tensor(mask)
    loss = cross_attention_loss(k_t, v_t, k_s, v_s, m, method="gram")
    loss.backward()
    kt2, vt2 = k_t.detach().clone().requires_grad_(True), v_t.detach().clone().requires_grad_(True)
    ref = naive_loss(kt2, vt2, k_s, v_s, m)
    assert abs(loss.item() - ref.item()) < 1e-6, (loss.item(), ref.item())
    ref.backward()
    rows = [1, 2, 3, 4]                  # sample 0 sits exactly at L = 0, where the norm has no gradient
    for got, want in ((k_t.grad, kt2.grad), (v_t.grad, vt2.grad)):
        assert torch.allclose(got[rows].double(), want[rows].double(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("scale", [1e4, 1e6, 1e9])
@pytest.mark.parametrize("mask", [None, [True, False, True]])
def test_gram_float32_survives_large_activations(scale, mask):
    """Non-negative, correlated K and V at the paper's T_t = 17, T_s = 30: ||M_t||^2 ||M_s||^2
    leaves float32's range from activations of about 1e3 (1e4 here), the Grams themselves from
    about 1e8 (1e9). The loss ignores scale, so nothing stops activations from growing there:
    the float32 Gram form must still give the float64 loop's loss and gradient, masked-out
    samples included."""
    g = torch.Generator().manual_seed(13)
    k_s, v_s = (torch.rand(3, 30, 64, generator=g) for _ in range(2))
    k_t = (scale * (torch.rand(3, 17, 64, generator=g) + 0.5)).requires_grad_(True)
    v_t = (scale * (torch.rand(3, 17, 64, generator=g) + 0.5)).requires_grad_(True)
    m = None if mask is None else torch.tensor(mask)
    loss = cross_attention_loss(k_t, v_t, k_s * scale, v_s * scale, m, method="gram")
    loss.backward()
    kt2, vt2 = k_t.detach().double().requires_grad_(True), v_t.detach().double().requires_grad_(True)
    ref = naive_loss(kt2, vt2, k_s.double() * scale, v_s.double() * scale, m)
    ref.backward()
    assert torch.isfinite(loss) and abs(loss.item() - ref.item()) <= 1e-5 * ref.item(), (loss.item(), ref.item())
    for got, want in ((k_t.grad, kt2.grad), (v_t.grad, vt2.grad)):
        assert torch.isfinite(got).all() and want.abs().max() > 0
        assert torch.allclose(got.double(), want, rtol=1e-3, atol=1e-4 * want.abs().max().item())


def test_bad_shapes_rejected():
    k_t, v_t, k_s, v_s = rand(2, 3, 3, 8)
    with pytest.raises(ValueError, match="same batch size B and attention size d"):
        cross_attention_loss(k_t, v_t, k_s[:, :, :4], v_s[:, :, :4])
    with pytest.raises(ValueError, match="must be \\(B, T, d\\)"):
        cross_attention_loss(k_t[0], v_t[0], k_s, v_s)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        cross_attention_loss(k_t, v_t, k_s, v_s, mask=torch.ones(2))
    with pytest.raises(ValueError, match="unknown transfer loss"):
        get_loss("nope")
    assert LOSSES["dcat"] is cross_attention_loss


@pytest.mark.parametrize("lam", [float("inf"), float("nan"), -0.5, True, "1"])
def test_check_lam_refuses_what_is_not_a_finite_number_from_0(lam):
    """lambda weights L_CA in Eq. 19: an infinite or NaN weight would make every step NaN."""
    from dcatkit.losses import check_lam

    with pytest.raises(ValueError, match="finite number >= 0"):
        check_lam(lam)
    assert check_lam(0) == 0.0 and check_lam(2) == 2.0


def test_a_name_registered_twice_is_refused_and_the_first_loss_kept():
    from dcatkit.losses import register_loss

    first = LOSSES["dcat"]
    with pytest.raises(ValueError, match="'dcat' is already registered"):
        register_loss("dcat")(lambda *a, **k: None)
    assert LOSSES["dcat"] is first is get_loss("dcat")


@pytest.mark.parametrize("method", ["gram", "dense"])
def test_a_bool_or_integer_weight_is_refused(method):
    """weight= is a float reduction weight; a bool tensor (a mask passed as weight=) would sum the
    masked-in losses instead of averaging them (True -> 1.0), an integer one likewise: both are
    refused, the message naming what was expected and what was found."""
    args = rand(2, 3, 3, 4, seed=5)
    with pytest.raises(ValueError) as e:
        cross_attention_loss(*args, weight=torch.tensor([True, False]), method=method)
    assert str(e.value) == "weight must be a float tensor of shape (2,) (see mean_weights), got torch.bool (2,)"
    with pytest.raises(ValueError) as e:
        cross_attention_loss(*args, weight=torch.tensor([1, 0]), method=method)
    assert str(e.value) == "weight must be a float tensor of shape (2,) (see mean_weights), got torch.int64 (2,)"


@pytest.mark.parametrize("method", ["gram", "dense"])
def test_keys_and_values_of_other_shapes_are_refused(method):
    """K and V of one side must have the same (B, T, d). A V with another d would still give a
    number (K^T V is d_k x d_v), and one with another T a bare matmul error: both are refused
    with both shapes named, for the target and for the source."""
    k_t, v_t, k_s, v_s = rand(2, 3, 3, 4, seed=6)
    with pytest.raises(ValueError) as e:
        cross_attention_loss(k_t, v_t[:, :, :3], k_s, v_s[:, :, :3], method=method)
    assert str(e.value) == "k_target (2, 3, 4) and v_target (2, 3, 3) must match"
    with pytest.raises(ValueError) as e:
        cross_attention_loss(k_t, v_t[:, :2], k_s, v_s, method=method)
    assert str(e.value) == "k_target (2, 3, 4) and v_target (2, 2, 4) must match"
    with pytest.raises(ValueError) as e:
        cross_attention_loss(k_t, v_t, k_s, v_s[:, :, :3], method=method)
    assert str(e.value) == "k_source (2, 3, 4) and v_source (2, 3, 3) must match"


def test_the_cuda_branch_runs_the_batch_in_float64_once_and_agrees_with_the_cpu_path(monkeypatch):
    """On CUDA the Gram loss runs the whole batch in float64 with no near-zero test (that test reads
    a value back from the GPU: a stall per step, and no CUDA-graph capture, which bench's step
    ratio uses). A CUDA-only line: shown here with tensors that say they are on CUDA. One pass of
    ``_gram_terms``, in float64, even with a counted sample at L = 0 (the CPU path's float32 pass
    plus its float64 recompute); the value and gradients are the CPU path's, in float32."""
    import dcatkit.losses as L

    g = torch.Generator().manual_seed(0)
    kt, vt = (torch.randn(4, 5, 16, generator=g, requires_grad=True) for _ in range(2))
    ks, vs = kt.detach().clone(), vt.detach().clone()
    ks[1:], vs[1:] = torch.randn(3, 5, 16, generator=g), torch.randn(3, 5, 16, generator=g)   # sample 0: L = 0
    mask = torch.tensor([True, True, False, True])
    calls, terms = [], L._gram_terms
    monkeypatch.setattr(L, "_gram_terms", lambda *a: calls.append(a[-1]) or terms(*a))

    def run():
        loss = L.cross_attention_loss(kt, vt, ks, vs, mask, method="gram")
        return (loss, *torch.autograd.grad(loss, (kt, vt)))

    cpu = run()
    assert calls == [torch.float32, torch.float64]                  # the CPU path: float32, then the recompute
    calls.clear()
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    cuda = run()
    monkeypatch.undo()
    assert calls == [torch.float64]
    for a, b in zip(cpu, cuda):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-9)
