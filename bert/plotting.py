"""Matplotlib, optional and headless: the few lines every PNG this package draws (training curves) shares.

Matplotlib is imported only when a figure is drawn, with the non-interactive Agg backend; when it is not installed,
a single warning says how to get it and no file is written (training results never depend on a plotting library).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

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
    """Write ``figure`` to ``path`` through a temporary file, so a reader never sees a half-written PNG."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    tmp.replace(path)
