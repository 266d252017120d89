"""What this project checks on a CUDA GPU (docs/guides/gpu.md): run it where there is one (Colab, a cloud machine)
and keep what it prints. About a minute on one H100; a few on a T4.

    python scripts/gpu_check.py [--work DIR] [--steps N]

1. ``parity``: our BertForPreTraining and transformers' (the reference; ``pip install transformers``) with the demo
   model's weights (weights/bert-demo), on CUDA in float32: the MLM and NSP logits agree to 1e-4 (the largest
   difference is printed).
2. ``pretrain --fp16`` and ``pretrain --bf16`` (the latter skipped on a GPU without bfloat16: a T4, a V100):
   ``--steps`` steps of bert-mini from random weights on a small corpus prepared here (the first lines of
   WikiText-2's train split from ../shared/data/wikitext-2 when it is there, else this repository's own docs): the
   MLM loss falls by at least 0.5 nats from the first 10 steps to the last 10; the run's device line names the GPU
   and its precision; settings.json records the device. The float16 run then continues with ``--resume`` for 10
   more steps (its gradient scaler's state, restored on the GPU).
3. ``distill --fp16`` (a 1-layer student of that model) and ``finetune classify --fp16`` (that model, on a
   classification file made from the corpus's lines), 20 steps each: they run to the end on the GPU.
4. ``fill-mask --fp16`` on CUDA: the demo model's top answer in float16 is float32's. A ``bert`` whose inference
   commands have no ``--device`` yet makes this a SKIP.

One line per check (PASS, FAIL with the log to read, or SKIP with why), then a summary; exit status 0 when nothing
failed, 1 otherwise, and 2 with one line on stderr on a machine without a CUDA GPU. Each command's output is kept in
the work folder (default: a new temporary one, printed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "weights" / "bert-demo"
WIKITEXT = ROOT.parent / "shared" / "data" / "wikitext-2" / "wiki.train.tokens"
CORPUS_LINES = 8000  # of WikiText-2's train split (about 1 MB): prepared in seconds
PROMPT = "The capital of France is [MASK]."
LOSS_DROP = 0.5  # nats the MLM loss must fall from the first 10 steps to the last 10
PARITY_TOLERANCE = 1e-4


class Failed(Exception):
    """A check that ran and found something wrong."""


class Skipped(Exception):
    """A check that cannot run here (and says why)."""


class GpuCheck:
    """The checks of the module docstring, run in order in ``work`` on ``device`` (``cuda`` on a GPU machine)."""

    def __init__(self, work: Path, steps: int, device: str = "cuda") -> None:
        self.work, self.steps, self.device = work, steps, device
        self.data = work / "data"
        self.models: dict[str, Path] = {}  # what a check trained, for the next ones

    def bert(self, name: str, *args: object) -> subprocess.CompletedProcess:
        """``python -m bert ARGS`` from the repository root; its output is kept in WORK/NAME.log. Failed (naming
        its last line and the log) when it exits with an error."""
        done = subprocess.run([sys.executable, "-m", "bert", *map(str, args)], capture_output=True, text=True,
                              cwd=ROOT)
        log = self.work / f"{name}.log"
        log.write_text(f"$ bert {' '.join(map(str, args))}\n{done.stdout}{done.stderr}", encoding="utf-8")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise Failed(f"bert {args[0]} exited with {done.returncode}: {last} (log: {log})")
        return done

    def device_line(self, done: subprocess.CompletedProcess, command: str, precision: str) -> str:
        """The run's ``bert COMMAND: device ...`` line, Failed unless it names this device and ``precision``."""
        lines = [line for line in done.stderr.splitlines() if line.startswith(f"bert {command}: device ")]
        if len(lines) != 1 or self.device not in lines[0] or not lines[0].endswith(precision):
            raise Failed(f"expected one 'bert {command}: device {self.device}..., {precision}' line, got {lines}")
        return lines[0].removeprefix(f"bert {command}: ")

    # ---- 1. parity -------------------------------------------------------------------------------------------------
    def parity(self) -> str:
        try:
            import transformers
        except ImportError:
            raise Skipped("transformers is not installed (pip install transformers)") from None
        from bert.heads import BertForPreTraining

        ours = BertForPreTraining.from_pretrained(DEMO).to(self.device).eval()
        # float32 asked for: the demo model is stored in float16, which transformers 5 would keep
        theirs = transformers.BertForPreTraining.from_pretrained(DEMO, torch_dtype=torch.float32,
                                                                 attn_implementation="eager")
        theirs = theirs.to(self.device).eval()
        generator = torch.Generator().manual_seed(0)
        input_ids = torch.randint(1000, ours.config.vocab_size, (4, 64), generator=generator)
        input_ids[:, 0], input_ids[:, -1] = 101, 102  # [CLS] ... [SEP]
        mask = torch.ones_like(input_ids)
        mask[1:, 48:] = 0  # three rows padded: the padded positions' outputs are not compared
        types = torch.zeros_like(input_ids)
        types[:, 32:] = 1
        inputs = {k: v.to(self.device) for k, v in (("input_ids", input_ids), ("token_type_ids", types),
                                                    ("attention_mask", mask))}
        with torch.no_grad():
            a, b = ours(**inputs), theirs(**inputs)
        real = inputs["attention_mask"].bool()
        difference = max(float((a.prediction_logits[real] - b.prediction_logits[real]).abs().max()),
                         float((a.seq_relationship_logits - b.seq_relationship_logits).abs().max()))
        if not difference < PARITY_TOLERANCE:
            raise Failed(f"max |difference| of the logits {difference:.2e} >= {PARITY_TOLERANCE:g}")
        return f"max |difference| of MLM and NSP logits {difference:.1e} (< {PARITY_TOLERANCE:g}), float32 on " \
               f"{self.device}, weights/bert-demo vs transformers {transformers.__version__}"

    # ---- 2. pretraining --------------------------------------------------------------------------------------------
    def prepare(self) -> str:
        corpus = self.work / "corpus.txt"
        if WIKITEXT.is_file():
            with open(WIKITEXT, encoding="utf-8") as handle:
                lines = [line for _, line in zip(range(CORPUS_LINES), handle, strict=False)]
            corpus.write_text("".join(lines), encoding="utf-8")
            source, corpus_format = f"the first {len(lines)} lines of {WIKITEXT}", "wikitext"
        else:
            docs = sorted((ROOT / "docs").rglob("*.md"))
            corpus.write_text("\n\n".join(p.read_text(encoding="utf-8") for p in docs), encoding="utf-8")
            source, corpus_format = f"this repository's {len(docs)} docs pages", "auto"
        self.bert("prepare", "prepare", corpus, "--tokenizer", DEMO, "--out", self.data, "--format", corpus_format,
                  "--max-seq-len", 128, "--eval-fraction", 0.05, "--quiet")
        return source

    def pretrain(self, flag: str) -> str:
        if flag == "--bf16" and torch.cuda.get_device_capability() < (8, 0):  # as bert.engine.distributed says
            raise Skipped(f"{torch.cuda.get_device_name()} has no bfloat16: --fp16 is its mixed precision")
        run = self.work / f"pretrain{flag.replace('--', '-')}"
        done = self.bert(run.name, "pretrain", "--data", self.data, "--out", run, "--config", "mini", "--max-steps",
                         self.steps, "--batch-size", 32, "--log-every", 1, "--eval-every", 0, "--eval-batches", 5,
                         "--no-progress", "--device", self.device, flag)
        precision = {"--fp16": "float16 autocast + gradient scaler", "--bf16": "bfloat16 autocast"}[flag]
        line = self.device_line(done, "pretrain", precision)
        losses = train_losses(run)
        first, last = statistics.mean(losses[:10]), statistics.mean(losses[-10:])
        if len(losses) != self.steps or not last < first - LOSS_DROP:
            raise Failed(f"MLM loss {first:.2f} over the first 10 steps, {last:.2f} over the last 10 "
                         f"({len(losses)} steps): it must fall by {LOSS_DROP} (log: {self.work / run.name}.log)")
        recorded = json.loads((run / "settings.json").read_text(encoding="utf-8"))["device"]
        if not recorded.startswith(self.device):
            raise Failed(f"settings.json records device {recorded!r}")
        self.models[flag] = run / "final"
        return f"MLM loss {first:.2f} → {last:.2f} over {self.steps} steps; {line}; settings.json: {recorded}"

    def resume_fp16(self) -> str:
        if "--fp16" not in self.models:
            raise Skipped("the --fp16 run did not finish")
        run = self.models["--fp16"].parent
        total = self.steps + 10
        self.bert("pretrain-fp16-resume", "pretrain", "--data", self.data, "--out", run, "--config", "mini",
                  "--max-steps", total, "--batch-size", 32, "--log-every", 1, "--eval-every", 0, "--eval-batches",
                  5, "--no-progress", "--device", self.device, "--fp16", "--resume")
        steps = len(train_losses(run))
        state = torch.load(run / "checkpoints" / f"step-{total:07d}" / "training_state.pt", weights_only=True)
        if steps != total or not state["scaler"].get("scale", 0) > 0:
            raise Failed(f"{steps} train lines (expected {total}); scaler state {state['scaler']}")
        return f"continued to step {total}; the gradient scaler's scale is {state['scaler']['scale']:g}"

    # ---- 3. distillation and fine-tuning -----------------------------------------------------------------------
    def distill(self) -> str:
        teacher = self.trained_model()
        done = self.bert("distill", "distill", "--teacher", teacher, "--data", self.data, "--out",
                         self.work / "distill", "--student-layers", 1, "--max-steps", 20, "--batch-size", 32,
                         "--eval-every", 0, "--eval-batches", 5, "--no-progress", "--device", self.device, "--fp16")
        return self.device_line(done, "distill", "float16 autocast + gradient scaler")

    def finetune(self) -> str:
        model = self.trained_model()
        lines = [" ".join(line.split()) for line in (self.work / "corpus.txt").read_text(encoding="utf-8")
                 .splitlines() if 5 <= len(line.split()) <= 60 and "\t" not in line][:600]
        median = statistics.median(len(line.split()) for line in lines)
        rows = [f"{line}\t{'long' if len(line.split()) > median else 'short'}" for line in lines]
        train, evaluation = self.work / "classify-train.tsv", self.work / "classify-eval.tsv"
        train.write_text("sentence\tlabel\n" + "\n".join(rows[:500]) + "\n", encoding="utf-8")
        evaluation.write_text("sentence\tlabel\n" + "\n".join(rows[500:]) + "\n", encoding="utf-8")
        out = self.work / "finetune"
        self.bert("finetune", "finetune", "classify", "--model", model, "--train", train, "--eval", evaluation,
                  "--out", out, "--max-steps", 20, "--batch-size", 16, "--no-progress", "--device", self.device,
                  "--fp16")
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        if not metrics["device"].startswith(self.device):
            raise Failed(f"metrics.json says device {metrics['device']!r}")
        return f"{metrics['steps']} steps on {metrics['device']}, eval accuracy {metrics['accuracy']:.3f}, peak " \
               f"memory {metrics['peak_memory_gb']} GB"

    def trained_model(self) -> Path:
        if "--fp16" not in self.models:
            raise Skipped("the --fp16 pretraining run did not finish")
        return self.models["--fp16"]

    # ---- 4. inference ----------------------------------------------------------------------------------------------
    def fill_mask_fp16(self) -> str:
        answers = {}
        for precision in ("float32", "--fp16"):
            args = ["fill-mask", "--model", DEMO, "--device", self.device, "--json", PROMPT]
            try:
                done = self.bert(f"fill-mask-{precision.strip('-')}", *args,
                                 *([precision] if precision != "float32" else []))
            except Failed as failure:
                if "unrecognized arguments" in str(failure):
                    raise Skipped(f"this bert's fill-mask has no such flag yet ({failure})") from None
                raise
            top = json.loads(done.stdout)[0]  # the first mask's candidates (or, one mask, the first candidate)
            answers[precision] = (top[0] if isinstance(top, list) else top)["token_str"]
        if answers["--fp16"] != answers["float32"]:
            raise Failed(f"top answer in float16 {answers['--fp16']!r}, in float32 {answers['float32']!r}")
        return f"{PROMPT} → {answers['--fp16']!r} in float16 and float32"


def train_losses(run: Path) -> list[float]:
    """The MLM loss of every train line of a run's metrics.jsonl."""
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [e["mlm_loss"] for e in events if e["kind"] == "train"]


def run_checks(check: GpuCheck) -> dict[str, int]:
    """Run every check, print its line; the count of each outcome."""
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    steps: list[tuple[str, Callable[[], str]]] = [
        ("parity", check.parity), ("prepare", check.prepare), ("pretrain --fp16", lambda: check.pretrain("--fp16")),
        ("pretrain --bf16", lambda: check.pretrain("--bf16")), ("pretrain --fp16 --resume", check.resume_fp16),
        ("distill --fp16", check.distill), ("finetune --fp16", check.finetune),
        ("fill-mask --fp16", check.fill_mask_fp16)]
    for name, step in steps:
        start = time.perf_counter()
        try:
            outcome, detail = "PASS", step()
        except Failed as failure:
            outcome, detail = "FAIL", str(failure)
        except Skipped as skip:
            outcome, detail = "SKIP", str(skip)
        except Exception as error:  # a bug, a missing file: the other checks still run
            outcome, detail = "FAIL", f"{type(error).__name__}: {error}"
        counts[outcome] += 1
        print(f"{outcome} {name} ({time.perf_counter() - start:.0f} s): {detail}", flush=True)
        if name == "prepare" and outcome != "PASS":
            break  # nothing to train on
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="folder for the data, runs and logs (default: a new temporary one)")
    parser.add_argument("--steps", type=int, default=50, help="pretraining steps per precision (default 50)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU here (torch {torch.__version__}); run this on a machine with one "
              "(docs/guides/gpu.md)", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"gpu_check: {torch.cuda.get_device_name()} (compute capability "
          f"{'.'.join(map(str, torch.cuda.get_device_capability()))}), torch {torch.__version__}, CUDA "
          f"{torch.version.cuda}; work folder {work}", flush=True)
    start = time.perf_counter()
    counts = run_checks(GpuCheck(work, args.steps))
    print(f"gpu_check: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
