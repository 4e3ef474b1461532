"""``warn``: a warning attributed to the first caller outside dcatkit.

A warning raised deep in the kit (a table pairing runs of two machines, a recording shorter
than its list line) is about the user's call: attributing it to the user's line makes the
message point there, and Python's default filter (once per location) then shows it once per
line of the user's code, not once per session for every table the kit's one line builds.
"""
from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` with the stack level of the first frame outside dcatkit."""
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
