"""Where a pretraining step's time goes: the engine's own step (data, masking, forward, backward, clipping, optimizer)
under torch.profiler, each operator's own time summed into matmuls, attention, element-wise work, casts, the optimizer
and the rest, per step and as a share — with the step's model FLOP/s against the machine's matmul peak.

    python scripts/profile_pretraining_step.py --data DIR [--config mini] [--batch-size 32] [--threads 2] [--no-bf16]

DIR is a folder from ``bert prepare``. The step is exactly what ``bert pretrain`` runs with the same flags (the
from-scratch recipe fills in the rest); a few steps warm up first, then ``--steps`` are profiled.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from bert.engine.distributed import World
from bert.engine.flops import matmul_peak
from bert.engine.loop import Engine
from bert.precision import cpu_flags
from bert.pretraining import PretrainConfig
from bert.pretraining.task import PretrainingTask

# operator name pattern → category (the first that matches); self time, so a parent is not counted twice
CATEGORIES = (
    ("matmul", r"aten::(mm|addmm|bmm|matmul|linear)$|mkldnn.*(matmul|linear)"),
    ("attention", r"scaled_dot_product|flash_attention|_efficient_attention"),
    ("optimizer", r"adam|_foreach|optimizer|clip_grad|_fused"),
    ("casts and copies", r"aten::(to|_to_copy|copy_|clone|contiguous|empty_like|zeros_like|fill_|zero_)$"),
    ("layer norm", r"layer_norm"),
    ("embedding and gather", r"embedding|index|gather|scatter|masked_select|nonzero|take"),
    ("loss", r"cross_entropy|log_softmax|nll_loss|_softmax_backward"),
    ("element-wise", r"aten::(add|mul|div|sub|gelu|tanh|softmax|_softmax|dropout|where|sum|mean|threshold|"
                     r"native_dropout|rsqrt|sqrt|pow|exp|neg|fused_dropout)"),
)


def category(name: str) -> str:
    return next((label for label, pattern in CATEGORIES if re.search(pattern, name)), "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", default="mini")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-length", action="store_true",
                        help="sequences at full length, as in the last 80%% of a from-scratch run (default: its "
                             "start, sequences cut in two)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="default: the recipe's (on where native)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        config = PretrainConfig(data=args.data, out=out, config=args.config, batch_size=args.batch_size,
                                max_steps=1000, threads=args.threads, bf16=args.bf16, progress=False,
                                eval_every=0, save_every=0, half_length_fraction=0.0 if args.full_length else None)
        engine = Engine(PretrainingTask(config, World()))
        for _ in range(5):
            engine.train_step()
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                engine.train_step()
        wall = (time.perf_counter() - start) / args.steps
        bf16 = engine.cfg.bf16
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        totals[category(event.key)] += event.self_cpu_time_total / 1e6 / args.steps
    profiled = sum(totals.values())
    tokens = args.batch_size * engine.task.seq_len
    flops = engine.task.flops_per_token() * tokens / wall
    peak = matmul_peak(torch.bfloat16 if bf16 else torch.float32)
    print(f"{args.config}, batch {args.batch_size} × {engine.task.seq_len}, {'bfloat16' if bf16 else 'float32'}, "
          f"{args.threads} thread(s): {wall * 1e3:.0f} ms a step ({tokens / wall:,.0f} tokens/s), model FLOP/s "
          f"{flops / 1e9:.0f} G = {flops / peak:.0%} of the measured matmul peak {peak / 1e9:.0f} G; CPU flags: "
          f"{cpu_flags()}, torch {torch.__version__}")
    print(f"{'category':<22} {'ms/step':>8} {'share':>6}   (operator self time under the profiler: "
          f"{profiled * 1e3:.0f} ms of {wall * 1e3:.0f})")
    for label, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{label:<22} {seconds * 1e3:8.1f} {seconds / profiled:6.1%}")
    print("\nthe ten largest operators:")
    for event in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:10]:
        print(f"  {event.key:<48} {event.self_cpu_time_total / 1e3 / args.steps:8.1f} ms/step  "
              f"({category(event.key)})")


if __name__ == "__main__":
    main()
