"""Where a model name points: a local folder, ``weights/<name>``, the Hugging Face cache, or a download.

``resolve_model_dir("bert-base-uncased")`` tries, in order:

1. the name as a path (a checkpoint folder, or a weights file inside one);
2. ``weights/<name>`` in the current directory and in this project's checkout (``bert-demo``, the bundled demo
   model, also where an installed wheel keeps it: ``bert/_demo``);
3. the Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), offline;
4. a download with ``huggingface_hub`` when it is installed and ``HF_HUB_OFFLINE`` is not set;

and otherwise raises a :class:`~bert.errors.BertError` that says how to get the weights.
"""

from __future__ import annotations

import os
from pathlib import Path

from bert.errors import BertError

PROJECT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
DEMO_NAME = "bert-demo"
# A wheel (pip install ., or from a git URL) has no weights/ folder: pyproject.toml ships weights/bert-demo inside the
# package as bert/_demo, so the offline fallback model is there however the package was installed.
PACKAGED_DEMO = Path(__file__).resolve().parent / "_demo"
DOWNLOAD_PATTERNS = ["config.json", "*.safetensors", "*.safetensors.index.json", "vocab.txt", "tokenizer.json",
                     "tokenizer_config.json", "special_tokens_map.json"]
# Some old repositories (bert-base-uncased among them) have safetensors; a few only have the pickle.
FALLBACK_PATTERNS = ["pytorch_model.bin", "pytorch_model.bin.index.json"]


def hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ["HF_HOME"]) if os.environ.get("HF_HOME") else Path.home() / ".cache" / "huggingface"
    return home / "hub"


def demo_model_dir() -> Path:
    """The bundled demo model's folder: weights/bert-demo in a checkout, bert/_demo in an installed wheel."""
    checkout = PROJECT_WEIGHTS / DEMO_NAME
    return checkout if (checkout / "config.json").is_file() or not PACKAGED_DEMO.is_dir() else PACKAGED_DEMO


def weights_dirs() -> list[Path]:
    return list(dict.fromkeys([Path.cwd() / "weights", PROJECT_WEIGHTS]))


def find_in_weights(name: str) -> Path | None:
    for root in weights_dirs():
        for candidate in (root / name, root / name.split("/")[-1]):
            if (candidate / "config.json").is_file():
                return candidate
    if name == DEMO_NAME and (demo_model_dir() / "config.json").is_file():
        return demo_model_dir()
    return None


def find_in_hf_cache(repo_id: str) -> Path | None:
    """The snapshot folder of ``repo_id`` in the HF cache: the one ``refs/main`` names, else the newest complete one."""
    repo = hf_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    ref = repo / "refs" / "main"
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text().strip()
        if (snapshot / "config.json").is_file():
            return snapshot
    snapshots = sorted((repo / "snapshots").glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return snapshots[0].parent if snapshots else None


def download(repo_id: str) -> Path:
    """Fetch a checkpoint with huggingface_hub (into its usual cache) and return the snapshot folder."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        reason = "huggingface_hub is not installed (pip install huggingface_hub)"
        raise BertError(not_found_message(repo_id, reason)) from None
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=DOWNLOAD_PATTERNS))
        if not any((folder / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")):
            folder = Path(snapshot_download(repo_id, allow_patterns=DOWNLOAD_PATTERNS + FALLBACK_PATTERNS))
    except Exception as error:  # offline, unknown repo, auth, disk: all end the same way for the user
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BertError(not_found_message(repo_id, f"the download failed: {reason}")) from None
    return folder


def not_found_message(name: str, reason: str) -> str:
    return (f"model {name!r} not found: not a local folder, not in weights/{name.split('/')[-1]}, not in the Hugging "
            f"Face cache ({hf_cache_dir()}), and {reason}. Put a checkpoint folder (config.json + model.safetensors "
            f"+ vocab.txt) at weights/{name.split('/')[-1]}, or run `bert download {name}` where there is internet")


def resolve_model_folder(name_or_path: str | os.PathLike, allow_download: bool = True) -> Path:
    """The checkpoint folder that ``name_or_path`` refers to (for a weights file: the folder holding it)."""
    location = resolve_model_dir(name_or_path, allow_download)
    return location if location.is_dir() else location.parent


def resolve_model_dir(name_or_path: str | os.PathLike, allow_download: bool = True) -> Path:
    """The local folder (or weights file) that ``name_or_path`` refers to, downloading it if needed and allowed."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path.resolve()
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BertError(f"{name} does not exist")
    found = find_in_weights(name) or find_in_hf_cache(name)
    if found is not None:
        return found
    if not allow_download or os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise BertError(not_found_message(name, "downloading is switched off (HF_HUB_OFFLINE)"
                                          if allow_download else "downloading was not asked for"))
    return download(name)
