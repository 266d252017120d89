"""The lesson notebooks in notebooks/: each is committed *with* its outputs, so that a reader sees the answers, and
each re-runs top to bottom in a fresh Jupyter kernel of this interpreter (with the results their text states asserted
along the way, see CLAIMS) to the outputs stored in it, within its CPU-time limit.

**Stored outputs.** A re-run's outputs must match the stored ones cell by cell (:func:`compare_outputs`): the same
kinds of output (printed text, values, figures; stderr, i.e. warnings and progress bars, is not compared), the same
words, labels and tokens, and every number within ``atol + rtol * |stored|`` (default ``ATOL`` = ``RTOL`` = 1e-3:
room for the last printed digit on another CPU, not for a different result). A cell whose numbers depend on the
machine says so in its metadata: ``"lesson": {"compare": "words"}`` (timings: the numbers are not compared) or
``{"rtol": ..., "atol": ...}``; a notebook's metadata may set them for all its cells (the lessons that train:
rtol 0.05, atol 0.02, as their numbers come out of minutes of arithmetic whose last digits depend on the CPU).
Figures are compared by presence, not pixel by pixel, and first (:func:`compare_figures`): a cell that stored a
figure (an ``image/png`` output) must draw one again, and a cell that stored none must not draw one now, whatever
its comparison rule; the failure names the notebook, the cell's index and id, and its first line. Refresh a
notebook's outputs after changing it with ``python tests/test_notebooks.py NAME...`` (no name: all), which runs it
exactly as the test does and stores what it printed.

**Time.** The time is the kernel's CPU time (user + system, its children included) with torch on one thread, read in
a last cell: on an idle core that is the wall time, and unlike the wall time it does not grow when other processes
share the machine (on a 2-core machine under a load of 12, the notebooks measured 2-13 s of CPU but 10-56 s of wall
time; with torch's default threads, threads spinning while they waited used up to 6 times as much: 43 s for notebook
06). The lessons that train (pretraining, fine-tuning on real data) have their own limits (CPU_LIMITS_S) and are
marked ``slow``: they run only when the marker expression selects them (``python -m pytest -m slow
tests/test_notebooks.py``), so that the default run stays within CI's time.

**Data.** Lessons that read public data sets find them with ``notebooks/lessons.py``'s ``shared_data`` (under
$BERT_LESSON_DATA, else ``shared/data`` beside the checkout); without them those lessons fail, saying how to get
them (they are the slow ones: ``-m slow`` asks for them).
"""

from __future__ import annotations

import copy
import math
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# A hung cell fails the test rather than the whole run (the pretraining cell takes minutes). The limit is wall time:
# on a machine whose cores are busy with other work, a low-priority run may set BERT_CELL_TIMEOUT_S higher.
CELL_TIMEOUT_S = int(os.environ.get("BERT_CELL_TIMEOUT_S", "600"))
CPU_LIMIT_S = 30  # README: "each running in well under a minute on a CPU"
# Train for minutes (09 and 10: on 2 threads, 09 until its model leaves the plateau; 11: one epoch of MRPC).
CPU_LIMITS_S = {"09_pretraining": 900, "09b_domain_adaptation": 360, "10_finetuning_real_data": 480,
                "11_sentence_pairs": 420}
# A data set each one reads.
NEEDS_DATA = {"09_pretraining": "wikitext-2", "09b_domain_adaptation": "books", "10_finetuning_real_data": "sst2",
              "11_sentence_pairs": "mrpc"}
ATOL = RTOL = 1e-3
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def data_folder() -> Path | None:
    """The folder of the public data sets (see the module docstring), or None."""
    for folder in ([Path(os.environ["BERT_LESSON_DATA"])] if os.environ.get("BERT_LESSON_DATA") else []) + [
            ROOT.parent / "shared" / "data", ROOT / "shared" / "data"]:
        if folder.is_dir():
            return folder
    return None


# One core (see the docstring); notebooks/ on the path for `import lessons`; the data sets where the lessons look.
KERNEL_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "PYTHONPATH": os.pathsep.join(filter(None, [str(NOTEBOOK_DIR), os.environ.get("PYTHONPATH")]))}
if data_folder() is not None:
    KERNEL_ENV["BERT_LESSON_DATA"] = str(data_folder())

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
    "02_fill_mask": [
        ("hits = sorted((s for s in scored", """
# The text: "About half of the everyday sentences have an accepted word in the top 5 ... never first", and the answers
# it names (station, days, coffee, hospital, airport) are among them; every hit is listed, surest first.
assert (len(hits), len(CLOZE)) == (21, 40) and all(s["rank"] > 0 for s in hits), hits
named = {"The train arrived at the [MASK] on time.": "station", "A week has seven [MASK].": "days",
         "I drink a cup of [MASK] every morning.": "coffee", "The doctor works in a [MASK].": "hospital",
         "The plane landed at the [MASK].": "airport"}
listed = {s["sentence"]: s["words"] for s in hits}
assert all(word in listed[sentence] for sentence, word in named.items()), listed
assert [s["score"] for s in hits] == sorted((s["score"] for s in hits), reverse=True)"""),
        ("first_new = [next(", """
# The text: "its first guess is a word of the sentence in 18 of the 40, and never an accepted answer ... the first
# remaining one is accepted in 8 of 40"; "train for where the train arrived, france for the capital of France (then
# paris, at 0.020 against 0.027)"; "Its surest right answer gets a probability of 0.23"; "no milk from cows, no
# wednesday after Tuesday, no grandfather for a father's father".
assert (len(copies), first_right) == (18, 0), [s["sentence"] for s in copies]
assert sum(word in s["accepted"] for word, s in zip(first_new, scored)) == 8, first_new
copied = {s["sentence"]: s["words"][0] for s in copies}
assert copied["The train arrived at the [MASK] on time."] == "train"
assert copied["The capital of France is [MASK]."] == "france"
[france] = fill_mask(model, tokenizer, "The capital of France is [MASK].")
assert [c["token_str"] for c in france[:2]] == ["france", "paris"], france
assert abs(france[0]["score"] - 0.027) < 5e-4 and abs(france[1]["score"] - 0.020) < 5e-4, france
assert abs(max(s["score"] for s in hits) - 0.23) < 5e-3
missed = {s["sentence"] for s in misses}
assert {"Cows give us [MASK].", "Monday, Tuesday, [MASK], Thursday.", "My father's father is my [MASK]."} <= missed"""),
    ],
    "05_contextual_embeddings": [
        ("figure = plot_similarity(sentences, similarity", """
# The text: "Within it the two money senses are the closest pair" (sentences 1 and 2, counting from 0)
by_pair = {(i, j): similarity[i, j].item() for i in range(4) for j in range(i + 1, 4)}
assert max(by_pair, key=by_pair.get) == (1, 2), by_pair
# "All six pairs lie within a narrow band ... every pair scores far above 0."
assert 0.6 < pairs.min() and pairs.max() - pairs.min() < 0.2, pairs"""),
        ("by_layer = torch.stack([bank_by_layer(s) for s in sentences], 1)", """
# The text: "At layer 0 the four *bank* vectors differ only by their position embedding."
table = model.embeddings
for sentence, vector in zip(sentences, by_layer[0], strict=True):
    where = model_inputs(tokenizer, model, sentence)["input_ids"][0].tolist().index(bank_id)
    with torch.no_grad():
        by_hand = table.LayerNorm(table.word_embeddings.weight[bank_id] + table.token_type_embeddings.weight[0]
                                  + table.position_embeddings.weight[where])
    assert torch.allclose(vector, by_hand, atol=1e-5), sentence
assert len({round(v, 4) for v in by_layer[0].sum(-1).tolist()}) > 1  # and they do differ"""),
        ("baseline.append(cosine_similarity_matrix(words[layer])[different].mean().item())", """
# The text: "In the middle layers ... a mean cosine of about 0.2 ..., but at its last layer the baseline is close to 0",
# while the bank vectors stay high ("they are the word"; "layer 0: cosines near 1").
assert all(0.15 < b < 0.3 for b in baseline[1:-1]) and abs(baseline[-1]) < 0.05, baseline
assert self_similarity[-1] > 0.7 and self_similarity[0] > 0.95, self_similarity"""),
        ('accuracy = {"raw": report("raw contextual vectors"', """
# The text: "Most of the quiz is right from the raw vectors ... all three went to money".
raw_answers = nearest_centroid(lambda v: v)
wrong = [a for a, t in zip(raw_answers, truth) if a != t]
assert accuracy["raw"] > 0.8 and wrong == ["money"] * 3, raw_answers"""),
        ("centred_similarity = cosine_similarity_matrix(centred(vectors))", """
# The text: "Centred, only the two money senses stay clearly similar (about 0.4) and the plane's bank is negative to
# all three others".
others = [centred_similarity[i, j].item() for i in range(4) for j in range(i + 1, 4) if (i, j) != (1, 2)]
assert 0.3 < centred_similarity[1, 2] < 0.5 and max(others) < 0.1, centred_similarity
assert (centred_similarity[3, :3] < 0).all(), centred_similarity"""),
        ("gap[name] = same_sense - other_sense", """
# The text: "the gap ... grows more than fourfold once the shared part is gone, and a little more with whitening.
# The quiz, though, does not improve: the same three sentences stay wrong."
assert gap["centred"] > 4 * gap["raw"] and gap["whitened"] > gap["centred"], gap
def wrong_sentences(transform):
    return [s for (s, t), a in zip(quiz, nearest_centroid(transform)) if a != t]
assert wrong_sentences(lambda v: v) == wrong_sentences(centred) == wrong_sentences(whitened), gap
assert len(wrong_sentences(whitened)) == 3 and accuracy["raw"] == accuracy["centred"] == accuracy["whitened"]"""),
    ],
    "06_sentence_vectors_and_finetuning": [
        ("held_out_labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0] * len(held_out))", """
# The text: "No training sentence contains *not* or *but*" (and the groups are eight each, as the labels say).
assert not [t for t in train_texts if {"not", "but"} & set(t.lower().replace(",", " ").replace(".", " ").split())]
assert [len(texts) for texts in held_out.values()] == [8, 8, 8]"""),
    ],
    "08_variants": [
        ('ratio = {name: statistics.median(cpu[name]) / statistics.median(cpu["bert-base-uncased"])', """
# The text: in CPU time RoBERTa and ALBERT take as long as BERT (within 20%), DistilBERT about half (0.35-0.65).
assert 0.8 < ratio["roberta-base"] < 1.2 and 0.8 < ratio["albert-base-v2"] < 1.2, ratio
assert 0.35 < ratio["distilbert-base-uncased"] < 0.65, ratio"""),
    ],
}

CLAIM_TAG = "inserted-by-test"


def with_claims(path: Path, notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` with the checks of CLAIMS inserted after the cells they follow."""
    for anchor, check in CLAIMS.get(path.stem, []):
        [index] = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" and anchor in cell.source]
        notebook.cells.insert(index + 1, inserted(check.strip()))
    return notebook


def inserted(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata[CLAIM_TAG] = True
    return cell


def cleared(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` without outputs, as a fresh run starts."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def execute(path: Path, workdir: Path) -> tuple[nbformat.NotebookNode, float]:
    """Run the notebook at ``path`` from scratch in ``workdir``; returns it with its new outputs (the test's own cells
    taken out again) and the kernel's CPU seconds. A failing cell fails the test with its source and traceback."""
    notebook = with_claims(path, cleared(nbformat.read(path, as_version=4)))
    notebook.cells.insert(0, inserted(SAME_INTERPRETER))
    notebook.cells.append(inserted(CPU_SECONDS))
    client = NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(workdir)}})  # run in a scratch folder
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
    notebook.cells = [cell for cell in notebook.cells if not cell.metadata.get(CLAIM_TAG)]
    for number, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), 1):
        cell.execution_count = number
        for output in cell.outputs:
            if "execution_count" in output:
                output.execution_count = number
    return notebook, seconds


def visible(outputs: list) -> list[tuple[str, str]]:
    """What a cell shows that a re-run must reproduce: (kind, text) per output; figures as ("image", "")."""
    shown = []
    for output in outputs:
        if output.output_type == "stream":
            if output.name == "stdout":
                shown.append(("stdout", output.text))
        elif output.output_type in ("execute_result", "display_data"):
            data = output.get("data", {})
            if any(kind.startswith("image/") for kind in data):
                shown.append(("image", ""))
            elif "text/plain" in data:
                shown.append(("value", data["text/plain"]))
        elif output.output_type == "error":
            shown.append(("error", output.ename))
    # Consecutive stdout pieces are one text however the kernel happened to flush them.
    merged: list[tuple[str, str]] = []
    for kind, text in shown:
        if merged and kind == "stdout" and merged[-1][0] == "stdout":
            merged[-1] = ("stdout", merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


def figure_count(cell: nbformat.NotebookNode) -> int:
    """How many figures (``image/png`` outputs) a code cell shows."""
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def compare_figures(name: str, stored: nbformat.NotebookNode, fresh: nbformat.NotebookNode) -> list[str]:
    """Each cell of notebook ``name`` that drew a figure when stored and draws none now, or stored none and draws one
    now (a matplotlib backend switched away from the notebook's inline one shows nothing, silently)."""
    problems = []
    for index, (old, new) in enumerate(zip(stored.cells, fresh.cells, strict=True)):
        assert old.get("id") == new.get("id"), f"{name}: cell {index} is another cell in the re-run"
        if old.cell_type != "code" or (figure_count(old) > 0) == (figure_count(new) > 0):
            continue
        what = (f"stored {figure_count(old)} figure(s), the re-run draws none" if figure_count(old)
                else f"stored no figure, the re-run draws {figure_count(new)}")
        first_line = old.source.splitlines()[0] if old.source else ""
        problems.append(f"{name} cell {index} (id {old.get('id')}, {first_line!r}): {what}")
    return problems


def compare_text(stored: str, fresh: str, rule: dict) -> str | None:
    """None when ``fresh`` says what ``stored`` says (the same words; numbers within the rule's tolerance), else
    the first difference."""
    def words(text: str) -> list[str]:  # numbers aside; spacing too (a column's padding follows its numbers' width)
        return NUMBER.sub(" # ", text).split()

    if words(stored) != words(fresh) or len(stored.splitlines()) != len(fresh.splitlines()):
        for line_stored, line_fresh in zip(stored.splitlines(), fresh.splitlines(), strict=False):
            if words(line_stored) != words(line_fresh):
                return f"the words differ:\n  stored: {line_stored}\n  now:    {line_fresh}"
        return f"the text differs in length:\n  stored: {stored[-200:]!r}\n  now:    {fresh[-200:]!r}"
    if rule.get("compare") == "words":
        return None
    atol, rtol = rule.get("atol", ATOL), rule.get("rtol", RTOL)
    for line_stored, line_fresh in zip(stored.splitlines(), fresh.splitlines(), strict=True):
        for a, b in zip(NUMBER.findall(line_stored), NUMBER.findall(line_fresh), strict=True):
            if not math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol):
                return (f"{a} is now {b} (tolerance {atol} + {rtol} × |{a}|):\n  stored: {line_stored}\n"
                        f"  now:    {line_fresh}")
    return None


def compare_outputs(stored: nbformat.NotebookNode, fresh: nbformat.NotebookNode) -> list[str]:
    """Each code cell whose re-run shows something else than its stored outputs, with the first difference."""
    problems = []
    stored_cells = [c for c in stored.cells if c.cell_type == "code"]
    fresh_cells = [c for c in fresh.cells if c.cell_type == "code"]
    assert len(stored_cells) == len(fresh_cells)
    default = stored.metadata.get("lesson", {})  # a notebook's own tolerance, for all its cells
    for number, (old, new) in enumerate(zip(stored_cells, fresh_cells, strict=True), 1):
        rule = {**default, **old.metadata.get("lesson", {})}
        if rule.get("compare") == "none":
            continue
        before, after = visible(old.outputs), visible(new.outputs)
        where = f"cell [{number}] ({old.source.splitlines()[0] if old.source else ''!r})"
        if [kind for kind, _ in before] != [kind for kind, _ in after]:
            problems.append(f"{where}: stored outputs {[k for k, _ in before]}, now {[k for k, _ in after]}")
            continue
        for (_, text_before), (_, text_after) in zip(before, after, strict=True):
            difference = compare_text(text_before, text_after, rule)
            if difference:
                problems.append(f"{where}: {difference}")
                break
    return problems


def lesson_param(path: Path):
    marks = [pytest.mark.slow] if path.stem in CPU_LIMITS_S else []
    return pytest.param(path, id=path.stem, marks=marks)


MISSING_DATA = ("put the public data sets in shared/data beside the checkout, or set BERT_LESSON_DATA to the folder "
                "that holds them (docs/guides/tests.md, 'The data the lessons read')")


def require_data(path: Path) -> None:
    """A lesson asked for (these are the slow ones) whose data set is missing fails, saying how to get it: a run
    of ``-m slow`` that ran nothing must not pass."""
    needed = NEEDS_DATA.get(path.stem)
    if needed and (data_folder() is None or not (data_folder() / needed).is_dir()):
        pytest.fail(f"{path.name} reads the public data set {needed}/, which is not here: {MISSING_DATA}",
                    pytrace=False)


def test_there_are_notebooks_and_the_readme_lists_each():
    assert len(NOTEBOOKS) >= 11
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    assert [path.name for path in NOTEBOOKS if path.name not in readme] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_with_the_outputs_of_one_run(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts}: store the outputs of one run with python tests/test_notebooks.py "
        f"{path.stem}")
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"], f"{path.name} stored an error"
    assert sum(bool(visible(cell.outputs)) for cell in code) >= len(code) // 2, f"{path.name}: few cells show output"


@pytest.mark.parametrize("path", [lesson_param(path) for path in NOTEBOOKS])
def test_notebook_reruns_to_its_stored_outputs_within_the_cpu_time_limit(path, tmp_path, request):
    if path.stem in CPU_LIMITS_S and "slow" not in request.config.getoption("markexpr", ""):
        pytest.skip(f"{path.name} trains for minutes: run it with `python -m pytest -m slow tests/test_notebooks.py`")
    require_data(path)
    fresh, seconds = execute(path, tmp_path)
    stored = nbformat.read(path, as_version=4)
    figures = compare_figures(path.name, stored, fresh)
    assert figures == [], (f"a re-run draws figures in other cells than those stored (if the change is meant, store "
                           f"them: python tests/test_notebooks.py {path.stem}):\n" + "\n".join(figures))
    problems = compare_outputs(stored, fresh)
    assert problems == [], (f"{path.name}: a re-run shows other outputs than those stored (if the change is meant, "
                            f"store them: python tests/test_notebooks.py {path.stem}):\n" + "\n".join(problems))
    limit = CPU_LIMITS_S.get(path.stem, CPU_LIMIT_S)
    assert seconds < limit, f"{path.name} took {seconds:.1f} s of CPU time (limit {limit} s)"


def test_the_comparison_catches_a_changed_word_and_a_changed_number():
    rule = {}
    assert compare_text("top: cat 0.412, floor 0.101", "top: cat 0.4121, floor 0.1012", rule) is None
    assert "words differ" in compare_text("top: cat 0.412", "top: dog 0.412", rule)
    assert "is now" in compare_text("loss 3.52", "loss 3.61", rule)
    assert compare_text("loss 3.52", "loss 3.61", {"rtol": 0.05}) is None
    assert compare_text("took 3.5 s", "took 9.1 s", {"compare": "words"}) is None
    assert compare_text("bert    812.8 ms", "bert   1390.2 ms", {"compare": "words"}) is None


def test_the_figure_check_names_the_notebook_and_the_cell_that_lost_or_gained_a_figure():
    def notebook(*cells: list) -> nbformat.NotebookNode:
        made = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# a lesson", id="title")])
        for number, outputs in enumerate(cells):
            made.cells.append(nbformat.v4.new_code_cell(f"draw({number})", id=f"cell-{number}", outputs=outputs))
        return made

    printed = nbformat.v4.new_output("stream", name="stdout", text="loss 3.5\n")
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    stored = notebook([printed, figure], [printed], [])
    assert compare_figures("09.ipynb", stored, notebook([printed, figure], [printed], [])) == []
    assert compare_figures("09.ipynb", stored, notebook([printed], [printed, figure], [figure])) == [
        "09.ipynb cell 1 (id cell-0, 'draw(0)'): stored 1 figure(s), the re-run draws none",
        "09.ipynb cell 2 (id cell-1, 'draw(1)'): stored no figure, the re-run draws 1",
        "09.ipynb cell 3 (id cell-2, 'draw(2)'): stored no figure, the re-run draws 1"]


def test_every_lesson_has_its_colab_badge_and_setup_cell_as_the_script_writes_them():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "colab_cells.py"), "--check"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in NOTEBOOKS:
        badge = nbformat.read(path, as_version=4).cells[0]
        assert badge.cell_type == "markdown" and "colab-badge.svg" in badge.source, path.name
        assert badge.source.endswith(f"/blob/main/notebooks/{path.name})"), badge.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_colab_setup_cell_does_nothing_elsewhere_and_on_colab_keeps_torch_and_fetches_the_lessons_data(
        path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    [setup] = [cell for cell in notebook.cells if cell.get("id") == "colab-setup"]
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda command, **_: calls.append(command))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(setup.source, {})
    assert calls == [] and setup.outputs == []  # here: nothing run, nothing shown
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(os.path, "isdir", lambda _: False)  # a fresh Colab machine: no clone yet
    exec(setup.source, {})
    assert calls[0][:2] == ["git", "clone"]
    installs = [command[command.index("install") + 1:] for command in calls if command[1:3] == ["-m", "pip"]]
    assert installs[0] == ["-q", "-e", "/content/bert[plots]"]  # torch>=2.1 is met by Colab's: pip keeps it
    assert not [word for words in installs for word in words if word.startswith(("torch", "--upgrade", "-U"))]
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    opened = set(re.findall(r'shared_data\("([\w.-]+)"\)', code))
    fetched = [command[command.index("--only") + 1].split(",") for command in calls if "--only" in command]
    assert set(sum(fetched, [])) == opened and set(NEEDS_DATA.get(path.stem, "").split()) <= opened
    if fetched and data_folder() is not None:  # the names are the folders the data sets live in
        assert [name for name in fetched[0] if not (data_folder() / name).is_dir()] == []
    assert sys.path[:2] == ["/content/bert", "/content/bert/notebooks"]


def main(names: list[str]) -> None:
    """Run the named notebooks (all without names) as the test does and store their outputs."""
    import tempfile

    chosen = [p for p in NOTEBOOKS if not names or p.stem in names or p.name in names]
    for path in chosen:
        with tempfile.TemporaryDirectory() as workdir:
            notebook, seconds = execute(path, Path(workdir))
        old = nbformat.read(path, as_version=4)
        notebook.metadata = old.metadata
        nbformat.write(notebook, path)
        print(f"{path.name}: {len(notebook.cells)} cells, {seconds:.1f} s of CPU, outputs stored", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
