"""Turn a pretraining run into the bundled demo model: weights/bert-demo (fp16 safetensors + tokenizer + model card).

    python scripts/export_demo_model.py runs/wt2-mini [--out weights/bert-demo]

The run folder is one written by scripts/pretrain_wikitext2.sh. The position-embedding table is cut to the
sequence length the model was trained on (rows beyond it were never trained, so longer inputs get a clear error
instead of silent nonsense), weights are stored in float16 (loading casts back to float32), and the model card
records the command, data, budget and the held-out figures read from the run's metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from bert import BertConfig, BertForPreTraining
from bert.train.metrics import read_metrics

CARD = """# bert-demo

A small BERT (bert-mini shape: {layers} layers, hidden {hidden}, {heads} heads, {params:,} parameters) pretrained
from scratch with masked-language-modelling + next-sentence prediction by this project, so that `bert fill-mask`
and `bert nsp` have something real to run on when `bert-base-uncased` is not available. It is a demonstration of
the pipeline, not a useful language model: it saw ~{tokens_m:.0f}M tokens of Wikipedia text (bert-base saw 3,300M
words). Its next-sentence head works (accuracy below); its masked-word head, at this budget, has not yet left the
"frequent word" plateau of MLM training, so fill-mask mostly proposes common words (the, of, commas).

| | |
|---|---|
| vocabulary | bert-base-uncased's WordPiece vocab (30,522 tokens, uncased) |
| data | WikiText-2 train split (600 Wikipedia articles, 2.1M words; `../shared/data/wikitext-2`), CC BY-SA 3.0 |
| examples | original BERT format: sentence pairs packed to 128 tokens, 50% random next sentence, dupe factor 3 |
| budget | {minutes:.0f} minutes wall-clock on 2 CPU cores (Intel Xeon, torch 2.13 CPU), {steps} steps of batch 32 |
| recipe | AdamW lr 1e-3, 5% warmup, linear decay over the steps estimated to fit the budget, \
weight decay 0.01, no dropout, dynamic 15% masking |
| file | `model.safetensors` in float16 ({size_mb:.1f} MB); positions cut to the trained {positions} |

Held-out figures on the whole WikiText-2 **validation** split ({eval_examples:,} sentence pairs, fixed masking),
at the end of training:

| MLM accuracy | MLM loss | NSP accuracy |
|---|---|---|
| {mlm_accuracy:.3f} | {mlm_loss:.3f} | {nsp_accuracy:.3f} |

Reproduce (about {minutes:.0f} minutes):

    bash scripts/pretrain_wikitext2.sh runs/wt2-mini {minutes:.0f}
    python scripts/export_demo_model.py runs/wt2-mini

Training curves: `curves.png` beside this file.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder written by `bert pretrain`")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "weights" / "bert-demo")
    args = parser.parse_args()

    final = args.run / "final"
    model = BertForPreTraining.from_pretrained(final)
    data_meta = json.loads((Path(f"{args.run}-data") / "meta.json").read_text())
    positions = data_meta["max_seq_len"]

    config = BertConfig.from_dict({**model.config.to_dict(), "max_position_embeddings": positions})
    trimmed = BertForPreTraining(config).eval()
    state = model.state_dict()
    positions_key = "bert.embeddings.position_embeddings.weight"
    state[positions_key] = state[positions_key][:positions]
    trimmed.load_state_dict(state)

    args.out.mkdir(parents=True, exist_ok=True)
    trimmed.save_pretrained(args.out, dtype=torch.float16)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        if (final / name).is_file():
            shutil.copy2(final / name, args.out / name)
    if (args.run / "curves.png").is_file():
        shutil.copy2(args.run / "curves.png", args.out / "curves.png")

    events = read_metrics(args.run / "metrics.jsonl")
    last_eval = [e for e in events if e.get("kind") == "eval"][-1]
    last_train = [e for e in events if e.get("kind") == "train"][-1]
    card = CARD.format(
        layers=config.num_hidden_layers, hidden=config.hidden_size, heads=config.num_attention_heads,
        params=trimmed.num_parameters(), tokens_m=last_eval["step"] * 32 * 128 / 1e6,
        minutes=last_train["elapsed"] / 60, steps=last_eval["step"], positions=positions,
        size_mb=(args.out / "model.safetensors").stat().st_size / 1e6,
        eval_examples=data_meta["splits"]["eval"]["examples"], mlm_accuracy=last_eval["mlm_accuracy"],
        mlm_loss=last_eval["mlm_loss"], nsp_accuracy=last_eval["nsp_accuracy"])
    (args.out / "README.md").write_text(card, encoding="utf-8")
    print(f"wrote {args.out} ({(args.out / 'model.safetensors').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
