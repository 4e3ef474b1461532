"""The frozen source's cache key and rows (``dcatkit.frozen_source``): a cache built for one
dataset is never served to another whose samples differ in what reaches the source, and the
live source runs in eval mode whatever mode its model was left in."""
import numpy as np
import pytest
import torch

from dcatkit.data.dataset import PairedDataset
from dcatkit.frozen_source import LiveSource, SourceCache, cache_key
from dcatkit.model import build_model
from dcatkit.runtime import make_loader
from helpers import TINY, tiny_splits

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def setup():
    sp = tiny_splits(40, modalities=("imu", "video"))
    torch.manual_seed(0)
    src = build_model("video", sp.train.num_classes, sp.train.input_shape("video"), TINY["video"]).eval()
    return sp.train, src


def _with(ds, arrays=None, ids=None):
    return PairedDataset(arrays or ds.arrays, ds.labels, ds.classes, ds.subjects, ds.ids if ids is None else ids,
                         ds.sample_rates)


def test_the_same_inputs_under_permuted_ids_get_each_ids_own_outputs(setup, tmp_path):
    """Same inputs and labels in the same order, the ids permuted: sample id ``i`` now names
    another input, so a cache found by id must not be the first dataset's (it would hand each
    id the outputs of another sample's input)."""
    ds, src = setup
    first = SourceCache.build(src, ds, "video", tmp_path, progress=False)
    ids = list(ds.ids)
    perm = ids[1:] + ids[:1]                                      # every id moved by one row
    other = _with(ds, ids=perm)
    second = SourceCache.build(src, other, "video", tmp_path, progress=False)
    assert second.folder != first.folder
    live = LiveSource(src, "video")
    for batch in make_loader(other, 8, shuffle=False):
        want, got = live(batch, CPU), second(batch, CPU)
        torch.testing.assert_close(got.k, want.k.half().float(), rtol=0, atol=0)
        assert torch.equal(got.correct, want.correct)


def test_the_same_video_bytes_in_another_clip_shape_is_another_key(setup, tmp_path):
    """4 frames of 16x16 and 16 frames of 8x8 hold the same bytes per clip; a frame encoder runs on
    either, with K / V of another length (one per frame): another cache, holding the new K."""
    ds, src = setup
    video = np.asarray(ds.arrays["video"])
    n, t, c, h, w = video.shape
    reshaped = _with(ds, {**ds.arrays, "video": video.reshape(n, t * 4, c, h // 2, w // 2)})
    assert reshaped.arrays["video"].tobytes() == video.tobytes()
    assert cache_key(src, ds, "video") != cache_key(src, reshaped, "video")
    first = SourceCache.build(src, ds, "video", tmp_path, progress=False)
    second = SourceCache.build(src, reshaped, "video", tmp_path, progress=False)
    batch = next(iter(make_loader(reshaped, 4, shuffle=False)))
    live = LiveSource(src, "video")(batch, CPU)
    assert first(batch, CPU).k.shape[1] == t and second(batch, CPU).k.shape == live.k.shape == (4, 4 * t, 16)


def test_a_live_source_whose_model_is_set_to_training_again_runs_in_eval(setup):
    """The model may be put back in training mode after LiveSource froze it (e.g. by a caller
    training it): each call still runs it in eval mode (BatchNorm's running statistics, no
    dropout), the outputs and MCMA bits of the frozen model."""
    ds, src = setup
    batch = next(iter(make_loader(ds, 8, shuffle=False)))
    with torch.no_grad():
        ref = src.eval()(batch["video"].float() if batch["video"].dtype != torch.uint8 else batch["video"])
    live = LiveSource(src, "video")
    src.train()
    try:
        got = live(batch, CPU)
        state = {k: v.clone() for k, v in src.state_dict().items()}
        live(batch, CPU)
    finally:
        src.eval()
    assert all(torch.equal(state[k], v) for k, v in src.state_dict().items())   # running stats untouched
    torch.testing.assert_close(got.k, ref.k.float())
    torch.testing.assert_close(got.logits, ref.logits.float())
    assert torch.equal(got.correct, ref.logits.argmax(1) == batch["label"])


@pytest.mark.parametrize("name", ["k.npy", "v.npy", "correct.npy"])
def test_a_cache_file_holding_a_valid_array_of_another_shape_is_named(setup, tmp_path, name):
    """A readable .npy of the wrong shape in a finished cache folder (one sample fewer, e.g. a file
    of another build copied in): a ValueError naming the file, not rows read off by one or missing."""
    ds, src = setup
    folder = SourceCache.build(src, ds, "video", tmp_path, progress=False).folder
    path = folder / name
    good = np.load(path)
    np.save(path, np.ascontiguousarray(good[:-1]))
    with pytest.raises(ValueError, match=name) as e:
        SourceCache(folder, "video")
    assert "delete" in str(e.value) and str(folder) in str(e.value)
    np.save(path, good)
    SourceCache(folder, "video")                         # restored: read as before


def test_a_source_modality_list_shorter_than_the_sources_is_refused(setup):
    """Two sources and one modality name: refused, not the second source silently dropped."""
    from dcatkit.frozen_source import _source_names
    ds, src = setup
    with pytest.raises(ValueError, match="give one per source"):
        _source_names([src, src], ["video"])
