"""The variants side by side: parameters and inference time of ours and transformers' for each released config.

    python scripts/bench_variants.py [--batch 8] [--length 128] [--repeats 5] [--threads 2] [--out FILE.json]

For bert-base-uncased, roberta-base, albert-base-v2 and distilbert-base-uncased (the published configs, built in:
no download), one model of ours with random weights is saved and loaded into transformers' class of the same name,
so both run the same weights on the same random token ids (batch × length, no padding). In every repeat ours and
the reference alternate, so machine noise hits both; the figure is the median of the repeats after one warm-up.
Prints a Markdown table: parameters, ours and the reference in ms, ours / reference, and each model's time as a
multiple of BERT-base's (ours). README's Variants table comes from this script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers

from bert.variants.auto import auto_class, released_config

NAMES = ("bert-base-uncased", "roberta-base", "albert-base-v2", "distilbert-base-uncased")
REFERENCE = {"bert": "BertModel", "roberta": "RobertaModel", "albert": "AlbertModel", "distilbert": "DistilBertModel"}


def seconds(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    start = time.perf_counter()
    model(**inputs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(0)
    input_ids = torch.randint(5, 1000, (args.batch, args.length))  # ids ≥ 5: no special token in any vocabulary
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    rows = []
    for name in NAMES:
        config = released_config(name)
        ours = auto_class(config, "base")(config).eval()
        with tempfile.TemporaryDirectory() as tmp:
            ours.save_pretrained(tmp)
            reference = getattr(transformers, REFERENCE[config.model_type]).from_pretrained(tmp).eval()
        times: dict[str, list[float]] = {"ours": [], "reference": []}
        with torch.inference_mode():
            for model in (ours, reference):
                model(**inputs)  # warm-up
            for _ in range(args.repeats):
                times["ours"].append(seconds(ours, inputs))
                times["reference"].append(seconds(reference, inputs))
        rows.append({"model": name, "parameters": ours.num_parameters(),
                     "ours_ms": 1000 * statistics.median(times["ours"]),
                     "reference_ms": 1000 * statistics.median(times["reference"])})
        del ours, reference

    base = rows[0]["ours_ms"]
    print(f"batch {args.batch} × {args.length}, {args.threads} threads, median of {args.repeats} "
          f"(torch {torch.__version__}, transformers {transformers.__version__})")
    print("| model | parameters | ours | transformers | ours / transformers | × BERT-base |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['parameters'] / 1e6:.1f}M | {row['ours_ms']:.0f} ms | "
              f"{row['reference_ms']:.0f} ms | {row['ours_ms'] / row['reference_ms']:.2f} | "
              f"{row['ours_ms'] / base:.2f} |")
    if args.out is not None:
        args.out.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
