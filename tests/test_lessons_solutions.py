"""The lessons' exercises have solutions in notebooks/solutions/, one file per lesson, and each solution is right:
every file runs on its own and asserts what it claims (its ``__main__`` block checks the answer against this
package or against a brute-force version). Every lesson has an *Exercises* section that points at its file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SOLUTIONS = sorted((NOTEBOOK_DIR / "solutions").glob("*.py"))
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NEEDS_DATA = {"10_finetuning": "sst2", "11_sentence_pairs": "mrpc"}  # the shared data set each one reads


def test_every_lesson_has_exercises_whose_solution_files_exist():
    problems = []
    for path in NOTEBOOKS:
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
        if "## Exercise" not in text:
            problems.append(f"{path.name}: no Exercises section")
        named = re.findall(r"solutions/([\w.]+\.py)", text)
        if not named:
            problems.append(f"{path.name}: its exercises name no solution file")
        problems += [f"{path.name}: solutions/{name} does not exist" for name in named
                     if not (NOTEBOOK_DIR / "solutions" / name).is_file()]
    assert problems == []


def solution_param(path: Path):
    """A solution that reads a public data set trains on it for minutes: it runs with the slow lessons (-m slow)."""
    return pytest.param(path, id=path.stem, marks=[pytest.mark.slow] if path.stem in NEEDS_DATA else [])


@pytest.mark.parametrize("path", [solution_param(path) for path in SOLUTIONS])
def test_solution_runs_and_checks_itself(path, tmp_path):
    if path.stem in NEEDS_DATA:
        sys.path.insert(0, str(NOTEBOOK_DIR))
        try:
            from lessons import shared_data

            shared_data(NEEDS_DATA[path.stem])
        except FileNotFoundError as error:  # asked for (-m slow) without its data: a failure, saying how to get it
            pytest.fail(f"{path.name}: {error}", pytrace=False)
        finally:
            sys.path.remove(str(NOTEBOOK_DIR))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(NOTEBOOK_DIR), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{path.name} printed nothing"
