"""dcatkit: D-CAT, decoupled cross-attention transfer between sensor modalities.

Modules (one concept each): ``encoders``, ``attention``, ``losses``, ``model``,
``train``, ``metrics``, ``presets``, ``frozen_source`` (live and cached),
``checkpoint``, ``runtime``, ``distributed``,
``experiment`` and the ``data`` sub-package; ``objectives`` (transfer methods by
name), ``sweep`` (grids of runs in parallel), ``stats`` (paired seed statistics)
and ``diagnostics`` (did alignment happen?).

Names below are imported lazily, so ``import dcatkit.model`` needs only torch,
torchvision and torchaudio (e.g. on a GPU box without pandas / scikit-learn).
"""
import importlib

__version__ = "0.1.0"

_LAZY = {
    "cross_attention_loss": "losses",
    "Classifier": "model",
    "build_model": "model",
    "get_preset": "presets",
    "evaluate": "train",
    "fit": "train",
    "fit_transfer": "train",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "make_objective": "objectives",
    "run_transfer_sweep": "sweep",
    "run_studies": "sweep",
    "summarise": "stats",
    "verdict": "stats",
    "export": "deploy",
    "Predictor": "deploy",
}
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dcatkit' has no attribute {name!r}")
