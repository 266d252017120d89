"""The package as users install it: a wheel (pip install ., or a git URL) carries the demo model and answers offline."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from support import REPO

import bert
from bert.cli import main

DISTRIBUTION = "bert-from-scratch"  # pip's name for the package; `import bert` and the `bert` command keep theirs


def test_pyproject_lists_every_package_of_bert() -> None:
    line = re.search(r"^packages = \[(.*)\]$", (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert line, "pyproject.toml has no [tool.setuptools] packages list"
    listed = set(re.findall(r'"([^"]+)"', line.group(1)))
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "bert").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert "bert._demo" in listed


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_non_editable_install_answers_offline_from_another_folder_as_the_checkout_does(tmp_path: Path) -> None:
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(REPO),
                            "-w", str(wheels)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("bert_from_scratch-*.whl"))
    # The distribution is named bert-from-scratch (PyPI's "bert" is another project); its version is bert/_version.py's.
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert f"\nName: {DISTRIBUTION}\n" in metadata and f"\nVersion: {bert.__version__}\n" in metadata, metadata[:300]
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    assert (target / "bert" / "_demo" / "model.safetensors").is_file()

    # The installed copy, not this checkout: run from an empty folder with only the installed package on the path,
    # no network, and an empty Hugging Face cache (so bert-base-uncased is not found and the demo model answers).
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    env.pop("HF_HUB_CACHE", None)
    where = subprocess.run([sys.executable, "-c", "import bert; print(bert.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr
    result = subprocess.run([sys.executable, "-m", "bert", "fill-mask", "The capital of France is [MASK].",
                             "--top-k", "5"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bundled demo model" in result.stderr and str(target) in result.stderr
    assert len(result.stdout.strip().splitlines()) >= 5

    # The weights inside the installed package are the shipped ones, byte for byte (and so is every other file of
    # weights/bert-demo: config, vocabulary, tokenizer, model card).
    packaged = target / "bert" / "_demo"
    assert sha256(packaged / "model.safetensors") == sha256(REPO / "weights" / "bert-demo" / "model.safetensors")
    shipped = sorted(p.name for p in (REPO / "weights" / "bert-demo").iterdir() if p.is_file())
    assert {name: sha256(packaged / name) for name in shipped} == {
        name: sha256(REPO / "weights" / "bert-demo" / name) for name in shipped}

    # The same answer as the checkout's editable install gives with the same (empty) cache: the same five words, in
    # the same order, with the same probabilities; the printed table identical.
    checkout_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    answers = {}
    for where_from, run_env in (("installed", env), ("checkout", checkout_env)):
        answer = subprocess.run([sys.executable, "-m", "bert", "fill-mask", "The capital of France is [MASK].",
                                 "--top-k", "5", "--json"], cwd=elsewhere, env=run_env, capture_output=True,
                                text=True, timeout=120)
        assert answer.returncode == 0, answer.stderr[-2000:]
        assert "bundled demo model" in answer.stderr
        answers[where_from] = json.loads(answer.stdout)[0]
    assert str(REPO / "weights" / "bert-demo") in answer.stderr  # the checkout's run read the checkout's copy
    installed, checkout = answers["installed"], answers["checkout"]
    assert len(installed) == 5
    assert [c["token_str"] for c in installed] == [c["token_str"] for c in checkout]
    assert [c["token"] for c in installed] == [c["token"] for c in checkout]
    # Same weights, same code: equal up to float round-off (a file that differs only slightly is the hash's to catch).
    assert max(abs(a["score"] - b["score"]) for a, b in zip(installed, checkout, strict=True)) < 1e-6
    printed = subprocess.run([sys.executable, "-m", "bert", "fill-mask", "The capital of France is [MASK].",
                              "--top-k", "5"], cwd=elsewhere, env=checkout_env, capture_output=True, text=True,
                             timeout=120)
    assert printed.returncode == 0 and printed.stdout == result.stdout, printed.stdout + result.stdout
    named = subprocess.run([sys.executable, "-m", "bert", "info", "--model", "bert-demo"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120)
    assert named.returncode == 0, named.stderr[-2000:]


def test_bert_version_is_the_installed_distributions_version() -> None:
    assert metadata.version(DISTRIBUTION) == bert.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", bert.__version__)


def test_bert_dash_dash_version_prints_the_versions_of_bert_and_torch(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"bert {bert.__version__} (torch {torch.__version__})\n"
    # docs/index.md shows it as this machine prints it (README's pinned CPU wheel)
    assert f"`bert {bert.__version__} (torch 2.13.0+cpu)`" in (REPO / "docs" / "index.md").read_text()


def torch_requirement() -> Requirement:
    """pyproject.toml's torch line, from [project] dependencies (a regex: tomllib is Python 3.11+, we support 3.10)."""
    block = re.search(r"^dependencies = \[(.*?)^\]", (REPO / "pyproject.toml").read_text(), re.MULTILINE | re.DOTALL)
    assert block, "pyproject.toml has no [project] dependencies list"
    return next(r for r in map(Requirement, re.findall(r'"([^"]+)"', block.group(1))) if r.name == "torch")


def test_the_torch_requirement_is_a_lower_bound_that_keeps_colabs_a_macs_and_the_cpu_wheels_torch() -> None:
    """docs/index.md, "Install elsewhere": `pip install -e .` keeps the torch already there. It does if the
    requirement is a lower bound only (no pin, no ceiling, no build): any supported torch satisfies it."""
    required = torch_requirement()
    assert required.url is None and required.marker is None
    assert [s.operator for s in required.specifier] == [">="], required
    for installed in ["2.1.0", "2.5.1+cu121", "2.8.0+cu126", "2.9.1", "2.13.0+cpu", torch.__version__]:
        assert required.specifier.contains(installed), installed  # a CUDA (+cu...) or Mac build, old or new
    assert not required.specifier.contains("2.0.1")


def test_installing_the_checkout_would_keep_the_installed_torch(tmp_path: Path) -> None:
    """What `pip install -e .` would do here (offline, from what is installed): install this distribution and
    nothing else; the torch this environment has stays."""
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
                           "-q", "--report", str(report), "-e", str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    would_install = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert would_install == [DISTRIBUTION]  # its dependencies, torch first, are satisfied as they are
