"""The synthetic presets against what the project's documents record of them, and the one
attention size that D-CAT needs between a source and its target (K^T V maps of the same size)."""
import re
from pathlib import Path

from dcatkit.model import build_model
from dcatkit.modalities import DEFAULT_KINDS
from dcatkit.presets import SYNTHETIC, SYNTHETIC_BY_KIND, TABLE_I, get_preset

ROOT = Path(__file__).resolve().parents[1]


def test_simulator_md_states_the_synthetic_presets_epochs():
    """benchmarks/SIMULATOR.md's ceilings and baselines were measured with preset="synthetic"
    at the epochs it states; the presets must still be those."""
    text = " ".join((ROOT / "benchmarks" / "SIMULATOR.md").read_text().split())
    m = re.search(r'preset="synthetic"` \(IMU: (\d+) epochs; video: (\d+); audio: (\d+)\)', text)
    assert m, "SIMULATOR.md no longer states the synthetic presets' epochs"
    assert tuple(int(x) for x in m.groups()) == tuple(SYNTHETIC[k].epochs for k in ("imu", "video", "audio"))


def test_results_md_states_the_synthetic_transfer_setup():
    """benchmarks/RESULTS.md's live-vs-cached table: IMU target at attention 128 and a frozen
    ResNet-10 video source (the synthetic presets)."""
    text = " ".join((ROOT / "benchmarks" / "RESULTS.md").read_text().split())
    m = re.search(r"\(attention (\d+)\), frozen ResNet-(\d+) video source", text)
    assert m and (int(m[1]), int(m[2])) == (SYNTHETIC["imu"].d_attn, SYNTHETIC["video"].encoder["depth"])


def test_any_two_kinds_share_one_attention_size_in_a_preset():
    """D-CAT compares the source's and the target's K^T V (d_attn x d_attn): within the synthetic
    preset, and within uestc-target, every kind has the same attention size; and the model built
    from a preset has that attention size and the preset's dropout."""
    assert len({p.d_attn for p in SYNTHETIC_BY_KIND.values()}) == 1
    target = {k: get_preset("uestc-target", "x", kind=k) for k in SYNTHETIC_BY_KIND}
    assert {p.d_attn for p in target.values()} == {TABLE_I[("uestc", "imu")].d_attn}
    shapes = {"imu": (6, 64), "video": (2, 3, 32, 32), "audio": (8000,)}
    for name, shape in shapes.items():
        p = get_preset("synthetic", name)
        model = build_model(name, 3, shape, p)
        assert model.attention.d_out == p.d_attn and model.dropout.p == p.dropout, name
        assert DEFAULT_KINDS[name] in SYNTHETIC_BY_KIND
