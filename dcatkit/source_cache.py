"""The older name of ``dcatkit.frozen_source``, the one home of the frozen source (live and cached).

``import dcatkit.source_cache`` gives that very module object, so every name
(``SourceCache``, ``cache_key``, ``run_source``, ``FoldedResNet``, ...) is importable from here
as before, and setting one (e.g. ``dcatkit.source_cache.DEFAULT_DIR = ...``) sets it there.
"""
import sys

from . import frozen_source

sys.modules[__name__] = frozen_source
