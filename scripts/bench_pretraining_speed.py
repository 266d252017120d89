"""Pretraining speed, side by side in one process: the engine's own training step (exactly what ``bert pretrain``
runs: masking, forward, backward, clipping, AdamW) eager and compiled, in bfloat16 and float32, and transformers'
BertForMaskedLM step (sdpa attention, the MLM head on every token) on the same batches — tokens/s and each one's
model FLOP/s as a share of this machine's matmul peak in its precision.

    python scripts/bench_pretraining_speed.py --data DIR [--config mini] [--batch-size 32] [--threads 2]
        [--mask-probs 0.5,0.15] [--rounds 5] [--steps 8] [--variants eager-bf16,compiled-bf16,...]

DIR is a folder from ``bert prepare``. Each masking rate is measured on its own (the MLM head scores as many rows
as the rate needs: 64 a sequence at 0.5, 20 at 0.15, the two ends of the from-scratch schedule). The variants take
turns, ``--steps`` steps each, for ``--rounds`` rounds after a warm-up (compiling, for the compiled ones); a round's
figure is its steps' tokens over their wall time. Printed: the median and range over the rounds, the ratio to the
first variant, the CPU flags and torch version. Compare figures only from one invocation: other runs on the machine
move them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bert.engine.distributed import World
from bert.engine.flops import matmul_peak, training_flops_per_token
from bert.engine.loop import Engine
from bert.precision import cpu_flags
from bert.pretraining import PretrainConfig
from bert.pretraining.task import PretrainingTask

# variant → (bfloat16, compiled); "transformers-*" are the reference implementation's step instead of ours
VARIANTS = {
    "eager-bf16": (True, False),
    "compiled-bf16": (True, True),
    "eager-fp32": (False, False),
    "transformers-bf16": (True, False),
    "transformers-fp32": (False, False),
}


def our_step(data: str, out: Path, args: argparse.Namespace, mask_prob: float, bf16: bool,
             compiled: bool) -> tuple[Callable[[], None], PretrainingTask]:
    """The engine's training step for these settings, and its task (whose batches transformers' step reuses)."""
    config = PretrainConfig(data=data, out=str(out), config=args.config, batch_size=args.batch_size,
                            max_steps=1000, threads=args.threads, bf16=bf16, compile=compiled, progress=False,
                            eval_every=0, save_every=0, mask_prob=mask_prob, final_mask_prob=mask_prob,
                            half_length_fraction=0.0 if args.full_length else None)
    engine = Engine(PretrainingTask(config, World()))
    return engine.train_step, engine.task


def transformers_step(task: PretrainingTask, bf16: bool) -> Callable[[], None]:
    """transformers' BertForMaskedLM (sdpa) with the same config, trained by AdamW on the task's own batches."""
    import transformers

    config = transformers.BertConfig(**task.model.config.to_dict(), attn_implementation="sdpa")
    model = transformers.BertForMaskedLM(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def step() -> None:
        (batch,), _ = task.next_step(0.0)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                         attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure(args: argparse.Namespace, mask_prob: float, peaks: dict[bool, float]) -> None:
    steps, flops = {}, {}
    with tempfile.TemporaryDirectory() as root:
        for name in args.variants:
            bf16, compiled = VARIANTS[name]
            step, task = our_step(args.data, Path(root) / name, args, mask_prob, bf16, compiled)
            config, seq = task.model.config, task.seq_len
            if name.startswith("transformers"):
                step = transformers_step(task, bf16)
                flops[name] = training_flops_per_token(config, seq, 1.0)  # its MLM head scores every token
            else:
                flops[name] = task.flops_per_token()  # the rows the masking rate needs
            for _ in range(args.warmup):  # compiles, for the compiled variant
                step()
            steps[name] = step
        tokens = args.batch_size * seq
        per_round: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                per_round[name].append(args.steps * tokens / (time.perf_counter() - start))
    first = statistics.median(per_round[args.variants[0]])
    print(f"\nmasking {mask_prob:g} ({args.config}, batch {args.batch_size} × {seq}, {args.threads} thread(s)): "
          f"tokens/s, median and range of {args.rounds} rounds of {args.steps} steps")
    print(f"{'variant':<20} {'tokens/s':>9} {'range':>15} {'ratio':>6} {'MFLOP/token':>12} {'FLOP share':>11}")
    for name, rates in per_round.items():
        median = statistics.median(rates)
        share = median * flops[name] / peaks[VARIANTS[name][0]]
        print(f"{name:<20} {median:9,.0f} {min(rates):7,.0f}–{max(rates):<7,.0f} {median / first:6.2f} "
              f"{flops[name] / 1e6:12.1f} {share:11.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", default="mini")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-length", action="store_true",
                        help="sequences at full length, as in the last 80%% of a from-scratch run (default: its "
                             "start, sequences cut in two)")
    parser.add_argument("--mask-probs", default="0.5,0.15")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(args.threads)
    peaks = {bf16: matmul_peak(torch.bfloat16 if bf16 else torch.float32)
             for bf16 in sorted({VARIANTS[name][0] for name in args.variants})}
    print(f"CPU flags: {cpu_flags()}; torch {torch.__version__}; matmul peak on {args.threads} thread(s): "
          + ", ".join(f"{'bfloat16' if bf16 else 'float32'} {peak / 1e9:.0f} GFLOP/s" for bf16, peak in peaks.items()))
    for mask_prob in (float(p) for p in args.mask_probs.split(",")):
        measure(args, mask_prob, peaks)


if __name__ == "__main__":
    main()
