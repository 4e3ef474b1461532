"""Audit 6 (warn.py): warn keeps the category it is given and stops at the package folder
itself, not at a sibling folder whose name starts like it."""
import os
import warnings

from dcatkit import warn as warn_module


def test_warn_keeps_the_category_it_is_given():
    """``warn(message, category)`` raises that category (a RuntimeWarning stays one; the
    default stays UserWarning), so filters on the category apply."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_module.warn("custom", RuntimeWarning)
        warn_module.warn("plain")
    assert [(w.category, str(w.message)) for w in caught] == [(RuntimeWarning, "custom"), (UserWarning, "plain")]


def test_warn_attributes_code_in_a_sibling_folder_named_like_the_package_to_the_user(tmp_path):
    """Code in a folder beside the package whose name starts with the package's (``dcatkit_runs/``,
    say) is the user's: a warning raised from it is attributed to its own line, not walked past
    as if it were inside dcatkit."""
    filename = warn_module._PACKAGE + "_runs" + os.sep + "script.py"
    code = compile("warn('from a sibling folder')\n", filename, "exec")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(code, {"warn": warn_module.warn})
    (w,) = caught
    assert w.filename == filename and w.lineno == 1, (w.filename, w.lineno)
