"""The lesson notebooks in notebooks/: each runs top to bottom in a fresh Jupyter kernel of this interpreter, and
they are committed without outputs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 120
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# Run first in every kernel: "python3" names a kernelspec, which could point at another Python than this one.
SAME_INTERPRETER = f"""import sys
assert sys.prefix == {sys.prefix!r}, (
    f"the python3 kernel runs {{sys.executable}}, not {sys.executable}: "
    "run `python -m ipykernel install --sys-prefix` with this interpreter")"""


def test_there_are_notebooks_and_the_readme_lists_each():
    assert len(NOTEBOOKS) >= 7
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    assert [path.name for path in NOTEBOOKS if path.name not in readme] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [index for index, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert dirty == [], f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(SAME_INTERPRETER))
    client = NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(tmp_path)}})  # run in a scratch folder
    failure = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as error:
        failure = ANSI_ESCAPE.sub("", str(error))  # the failing cell's source and its traceback, uncoloured
    if failure is not None:  # outside the except block, so pytest shows the cell's error rather than a chain
        pytest.fail(f"{path.name} failed:\n{failure}", pytrace=False)
