"""Writing PNGs leaves matplotlib's process-wide state alone: a notebook that trains (curves.png), runs a plotting
script or ``bert attention --out`` in its own kernel keeps its backend and its pyplot figures, so the figures it draws
next still show inline. Each case runs in a fresh interpreter, as the backend is per process."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A backend a notebook would have: Jupyter's inline one where it is installed, else any that is not Agg.
NOTEBOOK_BACKEND = ("module://matplotlib_inline.backend_inline" if importlib.util.find_spec("matplotlib_inline")
                    else "svg")

# argv: BACKEND, "pyplot" or "no-pyplot", a scratch folder. Prints what matplotlib's state is afterwards (JSON).
WRITE_EVERY_KIND_OF_PNG = """
import json, runpy, sys
from pathlib import Path

import matplotlib

backend, pyplot, work = sys.argv[1], sys.argv[2] == "pyplot", Path(sys.argv[3])
matplotlib.use(backend)
if pyplot:
    import matplotlib.pyplot as plt

    mine = plt.figure()  # the notebook's own figure, current
    plt.plot([1, 2], [3, 4])

from support import make_tiny_model, sentiment_file

from bert.cli import main
from bert.finetune import FinetuneConfig, classification
from bert.finetune.task import train
from bert.heads import BertForSequenceClassification
from bert.tokenizer.wordpiece import BertTokenizer

# 1. A training run: curves.png, redrawn after each evaluation.
model_dir = make_tiny_model(work / "model", cls=BertForSequenceClassification, num_labels=2)
tokenizer = BertTokenizer.from_pretrained(model_dir)
examples = classification.read_examples(sentiment_file(work / "t.tsv", repeat=1))
features = classification.encode_examples(
    tokenizer, examples, 32, classification.label_ids(examples.labels, {"neg": 0, "pos": 1}, "t"))
model = BertForSequenceClassification.from_pretrained(model_dir)
train(model, tokenizer, features, work / "run", FinetuneConfig(lr=1e-3, batch_size=4, max_steps=4, eval_every=2,
      progress=False), evaluate=lambda _: {"accuracy": 0.5}, main_metric="accuracy")
assert (work / "run" / "curves.png").stat().st_size > 0
# 2. A script's figure (scripts/ draw with the same bert.plotting.new_figure).
(work / "pre").mkdir()
(work / "pre" / "metrics.jsonl").write_text(json.dumps(
    {"kind": "eval", "step": 1, "elapsed": 60.0, "mlm_accuracy": 0.1, "mlm_loss": 7.0, "nsp_accuracy": 0.5}) + "\\n")
sys.argv = ["plot_pretraining_runs.py", f"run={work / 'pre'}", "--out", str(work / "runs.png")]
runpy.run_path(SCRIPTS + "/plot_pretraining_runs.py", run_name="__main__")
assert (work / "runs.png").stat().st_size > 0
# 3. The CLI's heatmap.
assert main(["attention", "The cat sat.", "--model", str(model_dir), "--out", str(work / "attention.png")]) == 0
assert (work / "attention.png").stat().st_size > 0

state = {"backend": matplotlib.get_backend(), "pyplot imported": "matplotlib.pyplot" in sys.modules}
if pyplot:
    state.update(figures=plt.get_fignums(), current_is_mine=plt.gcf() is mine)
print(json.dumps(state))
"""


@pytest.mark.parametrize("pyplot", ["pyplot", "no-pyplot"])
def test_writing_curves_scripts_and_cli_pngs_keeps_the_notebooks_backend_and_pyplot_figures(pyplot, tmp_path):
    """``pyplot``: the notebook drew a figure already; ``no-pyplot``: it only chose its backend (a later
    ``import matplotlib.pyplot`` must still get that one, and writing PNGs must not import pyplot)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]), "MPLBACKEND": "",
           "OMP_NUM_THREADS": "1"}
    code = f"SCRIPTS = {str(ROOT / 'scripts')!r}\n" + WRITE_EVERY_KIND_OF_PNG
    done = subprocess.run([sys.executable, "-c", code, NOTEBOOK_BACKEND, pyplot, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["backend"] == NOTEBOOK_BACKEND
    if pyplot == "pyplot":
        assert state["figures"] == [1] and state["current_is_mine"], state  # no figure added, left open or made current
    else:
        assert not state["pyplot imported"], state
