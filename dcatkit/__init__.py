"""dcatkit: D-CAT, decoupled cross-attention transfer between sensor modalities.

Modules (one concept each): ``encoders``, ``attention``, ``losses``, ``model``,
``train``, ``metrics``, ``presets``, ``experiment`` and the ``data`` sub-package.
"""
from .losses import cross_attention_loss
from .model import Classifier, build_model
from .presets import get_preset
from .train import evaluate, fit, fit_transfer, load_checkpoint, save_checkpoint

__version__ = "0.1.0"
__all__ = ["cross_attention_loss", "Classifier", "build_model", "get_preset", "evaluate", "fit",
           "fit_transfer", "load_checkpoint", "save_checkpoint"]
