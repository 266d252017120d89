"""What keeping freed memory (bert.engine.heap) does to a pretraining step: the engine's own step (exactly what
``bert pretrain`` runs) timed in fresh processes that take turns, with glibc's default heap and with the engine's
setting — ms a step, tokens/s, minor page faults and kernel time a step, and peak RSS.

    python scripts/bench_heap.py --data DIR [--threads 2] [--full-length] [--rounds 3] [--steps 24]

DIR is a folder from ``bert prepare``; the model is README's from-scratch one, bert-mini at batch 32. The setting is
process-wide and glibc adjusts its own thresholds as a process runs, so the two cannot take turns inside one process:
each round starts one process per arm (default first, then kept), warms up 5 steps and times ``--steps``. Printed:
per arm the median and range over the rounds, the ratio, the CPU flags and torch version.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from bert.precision import cpu_flags

BATCH_SIZE = 32


def one_arm(args: argparse.Namespace) -> dict[str, float]:
    """Time the engine's step in this process; with ``--arm default``, glibc's own heap settings."""
    import bert.engine.distributed
    from bert.engine.distributed import World
    from bert.engine.loop import Engine
    from bert.pretraining import PretrainConfig
    from bert.pretraining.task import PretrainingTask

    if args.arm == "default":
        bert.engine.distributed.keep_freed_memory = lambda: False  # the engine's process setup leaves the heap alone
    with tempfile.TemporaryDirectory() as out:
        config = PretrainConfig(data=args.data, out=out, config="mini", batch_size=BATCH_SIZE,
                                max_steps=1000, threads=args.threads, progress=False, eval_every=0, save_every=0,
                                half_length_fraction=0.0 if args.full_length else None)
        engine = Engine(PretrainingTask(config, World()))
        for _ in range(5):
            engine.train_step()
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(args.steps):
            engine.train_step()
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
        tokens = BATCH_SIZE * engine.task.seq_len * args.steps
    return {"ms_per_step": wall / args.steps * 1e3, "tokens_per_s": tokens / wall,
            "faults_per_step": (after.ru_minflt - before.ru_minflt) / args.steps,
            "kernel_ms_per_step": (after.ru_stime - before.ru_stime) / args.steps * 1e3,
            "peak_rss_gb": after.ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full-length", action="store_true",
                        help="sequences at full length, as in the last 80%% of a from-scratch run (default: its "
                             "start, sequences cut in two)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--arm", choices=("default", "kept"), help=argparse.SUPPRESS)  # a child process's arm
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(one_arm(args)))
        return
    results: dict[str, list[dict[str, float]]] = {"default": [], "kept": []}
    for _ in range(args.rounds):
        for arm in results:
            child = [sys.executable, __file__, *sys.argv[1:], "--arm", arm]
            out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
            results[arm].append(json.loads(out.strip().splitlines()[-1]))
    print(f"mini, batch {BATCH_SIZE}, {args.threads} thread(s), {args.rounds} rounds of {args.steps} "
          f"steps; CPU flags: {cpu_flags()}, torch {torch.__version__}")
    medians = {}
    for arm, rounds in results.items():
        medians[arm] = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        line = ", ".join(f"{key} {medians[arm][key]:,.2f} ({min(r[key] for r in rounds):,.2f}–"
                         f"{max(r[key] for r in rounds):,.2f})" for key in rounds[0])
        print(f"{arm:>8}: {line}")
    print(f"kept / default tokens/s: {medians['kept']['tokens_per_s'] / medians['default']['tokens_per_s']:.3f}")


if __name__ == "__main__":
    main()
