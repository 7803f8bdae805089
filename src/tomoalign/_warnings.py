"""One helper for every warning tomoalign gives: it points at the user's line.

A fixed ``stacklevel`` is right from one call depth only: the same estimator reached from
:func:`tomoalign.estimate_shifts`, :func:`tomoalign.align_stack` or a signal method sits at
different depths. :func:`warn` walks out of the package instead and attributes the warning to
the first frame whose module is not ``tomoalign`` or one of its submodules, so the file and
line shown are the user's (a script, a notebook cell, a test).
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["user_stacklevel", "warn"]


def _in_package(name: str) -> bool:
    return name == "tomoalign" or name.startswith("tomoalign.")


def user_stacklevel(skip: int = 1) -> int:
    """The ``stacklevel`` that names the first frame outside tomoalign.

    Parameters
    ----------
    skip : int, default 1
        Frames between this function and the ``warnings.warn`` call that will use the level
        (1: called directly by the function that warns).

    Returns
    -------
    int
        A ``stacklevel`` for :func:`warnings.warn` called from ``skip`` frames above.
    """
    frame = sys._getframe(skip)
    level = 1
    while frame is not None and _in_package(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Emit ``message`` as ``category``, attributed to the user's line (see the module).

    Examples
    --------
    >>> import warnings
    >>> from tomoalign._warnings import warn
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("a note for the user")
    >>> str(caught[0].message)
    'a note for the user'

    """
    warnings.warn(message, category, stacklevel=user_stacklevel(2) + 1)
