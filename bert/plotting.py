"""Matplotlib, optional and headless: the few lines every PNG this package draws (training curves) shares.

Matplotlib is imported only when a figure is drawn, with the non-interactive Agg backend; when it is not installed,
a single warning says how to get it and no file is written (training results never depend on a plotting library).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from bert.atomic import write_file_atomically

_warned = False


def pyplot() -> Any | None:
    """``matplotlib.pyplot`` on the Agg backend, or None (with one warning per process) when it is missing."""
    global _warned
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if not _warned:
            warnings.warn("matplotlib is not installed: no PNG is drawn (pip install matplotlib)", stacklevel=3)
            _warned = True
        return None
    return plt


def save_figure(figure: Any, path: Path) -> None:
    """Write ``figure`` to ``path`` as a PNG, atomically (a reader never sees a half-written PNG) and closing it;
    BertError ``cannot write PATH: REASON`` when that fails."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    try:
        write_file_atomically(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(figure)
