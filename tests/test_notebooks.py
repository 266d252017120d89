"""The lesson notebooks in notebooks/: each runs top to bottom in a fresh Jupyter kernel of this interpreter (with
the results their text states asserted along the way, see CLAIMS) in under CPU_LIMIT_S seconds of one CPU core, and
they are committed without outputs.

The time is the kernel's CPU time (user + system, its children included) with torch on one thread, read in a last
cell: on an idle core that is the wall time, and unlike the wall time it does not grow when other processes share
the machine (on a 2-core machine under a load of 12, the notebooks measured 2-13 s of CPU but 10-56 s of wall time;
with torch's default threads, threads spinning while they waited used up to 6 times as much: 43 s for notebook 06)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 120  # a hung cell fails the test rather than the whole run
CPU_LIMIT_S = 30  # README: "each running in well under a minute on a CPU"
KERNEL_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one core: see the docstring
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# Run first in every kernel: "python3" names a kernelspec, which could point at another Python than this one.
SAME_INTERPRETER = f"""import sys
assert sys.prefix == {sys.prefix!r}, (
    f"the python3 kernel runs {{sys.executable}}, not {sys.executable}: "
    "run `python -m ipykernel install --sys-prefix` with this interpreter")"""

# Run last: the CPU seconds the kernel has used, from its start (imports included) to here.
CPU_SECONDS = """import resource
print(sum(getattr(resource.getrusage(who), field) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
          for field in ("ru_utime", "ru_stime")))"""


# What a notebook's text says its results show, asserted in the same kernel right after the cell that computes
# them: (a line of that cell, the check). The checks read the notebook's own variables.
CLAIMS = {
    "05_contextual_embeddings": [
        ("figure = plot_similarity(sentences, similarity", """
# The text: "The two money senses should be the closest pair." (sentences 1 and 2, counting from 0)
pairs = {(i, j): similarity[i, j].item() for i in range(4) for j in range(i + 1, 4)}
assert max(pairs, key=pairs.get) == (1, 2), pairs"""),
        ("by_layer = torch.stack([bank_by_layer(s) for s in sentences], 1)", """
# The text: "At layer 0 the four *bank* vectors differ only by their position embedding."
table = model.embeddings
for sentence, vector in zip(sentences, by_layer[0], strict=True):
    where = encode(tokenizer, model, sentence)["input_ids"][0].tolist().index(bank_id)
    with torch.no_grad():
        by_hand = table.LayerNorm(table.word_embeddings.weight[bank_id] + table.token_type_embeddings.weight[0]
                                  + table.position_embeddings.weight[where])
    assert torch.allclose(vector, by_hand, atol=1e-5), sentence
assert len({round(v, 4) for v in by_layer[0].sum(-1).tolist()}) > 1  # and they do differ"""),
    ],
}


def with_claims(path: Path, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` with the checks of CLAIMS inserted after the cells they follow."""
    for anchor, check in CLAIMS.get(path.stem, []):
        [index] = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and anchor in cell.source]
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(check.strip()))
    return notebook


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
def test_notebook_runs_top_to_bottom_within_the_cpu_time_limit(path, tmp_path):
    notebook = with_claims(path, nbformat.read(path, as_version=4))
    notebook.cells.insert(0, nbformat.v4.new_code_cell(SAME_INTERPRETER))
    notebook.cells.append(nbformat.v4.new_code_cell(CPU_SECONDS))
    client = NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(tmp_path)}})  # run in a scratch folder
    failure = None
    try:
        client.execute(env=KERNEL_ENV)
    except (CellExecutionError, CellTimeoutError) as error:
        failure = ANSI_ESCAPE.sub("", str(error))  # the failing cell's source and its traceback, uncoloured
    if failure is not None:  # outside the except block, so pytest shows the cell's error rather than a chain
        pytest.fail(f"{path.name} failed:\n{failure}", pytrace=False)
    # Only the cell's stdout: a stream an earlier cell left unflushed (a warning on stderr) may arrive here too.
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs if o.get("name") == "stdout")
    seconds = float(printed.split()[-1])
    assert seconds < CPU_LIMIT_S, f"{path.name} took {seconds:.1f} s of CPU time (limit {CPU_LIMIT_S} s)"
