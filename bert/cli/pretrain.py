"""``bert pretrain``: train a BERT (or a RoBERTa, ALBERT, DistilBERT) from scratch or from a checkpoint on data written
by ``bert prepare`` (see :mod:`bert.train`)."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> None:
    from bert.train import PretrainConfig, pretrain  # torch and friends load only when this command runs

    config = PretrainConfig(
        data=args.data, out=args.out, config=args.config, init_from=args.init_from, head_lr=args.head_lr,
        objective=args.objective,
        max_steps=args.max_steps, time_budget=args.time_budget,
        batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr, warmup_steps=args.warmup_steps,
        warmup_fraction=args.warmup_fraction, weight_decay=args.weight_decay, optimizer=args.optimizer,
        max_grad_norm=args.max_grad_norm, bf16=args.bf16, eval_every=args.eval_every, eval_batches=args.eval_batches,
        save_every=args.save_every, keep_last=args.keep_last, resume=args.resume, seed=args.seed,
        whole_word_masking=args.whole_word_masking, mlm_probability=args.mask_prob,
        max_predictions_per_seq=args.max_predictions_per_seq,
        log_every=args.log_every, progress=not args.no_progress, threads=args.threads, compile=args.compile,
        gradient_checkpointing=args.gradient_checkpointing,
        model_overrides=None if args.dropout is None else {
            "hidden_dropout_prob": args.dropout, "attention_probs_dropout_prob": args.dropout})
    pretrain(config)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pretrain BERT or a variant (masked LM [+ next sentence or sentence order]) on prepared data, "
                         "from scratch or a checkpoint",
        description="Pretrain on a folder written by `bert prepare`, from random weights or (--init-from) from a "
                    "pretrained checkpoint: BertForPreTraining (MLM + NSP, MLM + SOP or MLM), AlbertForPreTraining "
                    "(MLM + SOP or MLM), RobertaForMaskedLM or DistilBertForMaskedLM (MLM). Writes RUN/metrics.jsonl, "
                    "RUN/curves.png, RUN/checkpoints/step-NNNNNNN/ and, at the end, RUN/final/ (model + tokenizer). "
                    "Multi-process: torchrun --nproc_per_node N -m bert pretrain ...")
    p.add_argument("--data", required=True, metavar="DIR", help="prepared data folder (from `bert prepare`)")
    p.add_argument("--config", metavar="NAME|PATH",
                   help="model size: tiny, mini, small, medium, base, large; a variant at one of those sizes: "
                        "albert-mini, roberta-mini, distilbert-mini, ... (the data's tokenizer must be the variant's "
                        "kind); or a config.json of any of them (default mini)")
    p.add_argument("--init-from", metavar="NAME|DIR",
                   help="continue pretraining this checkpoint (a folder, a run's final/, or a name such as "
                        "bert-base-uncased; BERT, RoBERTa, ALBERT or DistilBERT) instead of random weights; the data "
                        "must use its vocabulary")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to write into")
    p.add_argument("--objective", choices=("mlm+nsp", "mlm+sop", "mlm"),
                   help="what to train (default: what the data holds; mlm on sentence-pair data ignores the pair "
                        "labels); mlm+sop trains BERT's sentence head or ALBERT's SOP head on sentence-order data")
    stop = p.add_argument_group("length (at least one)")
    stop.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps; the learning rate reaches 0 here")
    stop.add_argument("--time-budget", type=float, metavar="MINUTES",
                      help="stop after this long; without --max-steps the schedule length is estimated from a "
                           "timed probe so the learning rate reaches 0 at about the end")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, default=32, metavar="B", help="examples per process per micro-batch")
    opt.add_argument("--grad-accum", type=int, default=1, metavar="K", help="micro-batches per optimizer step")
    opt.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4)")
    opt.add_argument("--head-lr", type=float, metavar="LR",
                     help="peak learning rate of the pretraining heads (MLM, NSP/SOP; default: --lr), e.g. for fresh "
                          "heads on a pretrained encoder")
    warm = opt.add_mutually_exclusive_group()
    warm.add_argument("--warmup-steps", type=int, metavar="N", help="linear warmup steps")
    warm.add_argument("--warmup-fraction", type=float, default=0.01, metavar="F",
                      help="warmup as a fraction of all steps (default 0.01)")
    opt.add_argument("--weight-decay", type=float, default=0.01,
                     help="decoupled weight decay (none on biases/LayerNorm)")
    opt.add_argument("--optimizer", choices=("adamw", "lamb"), default="adamw")
    opt.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm (0: off)")
    opt.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU or GPU)")
    opt.add_argument("--compile", action="store_true",
                     help="torch.compile the training step (a one-off compile; faster, less memory on bert-base)")
    opt.add_argument("--gradient-checkpointing", action="store_true",
                     help="recompute each layer in backward: much less activation memory, about 1/3 more compute")
    opt.add_argument("--dropout", type=float, metavar="P",
                     help="hidden and attention dropout (default: the config's, 0.1; short runs learn faster with 0)")
    opt.add_argument("--seed", type=int, default=0)
    mask = p.add_argument_group("masking")
    mask.add_argument("--whole-word-masking", action="store_true", help="mask all pieces of a word together")
    mask.add_argument("--mask-prob", type=float, default=0.15, metavar="P",
                      help="fraction of tokens masked for training (default 0.15; held-out MLM is always measured "
                           "at 0.15)")
    mask.add_argument("--max-predictions-per-seq", type=int, default=20, metavar="N",
                      help="cap on masked tokens per sequence (raise it with --mask-prob)")
    run = p.add_argument_group("logging, evaluation, checkpoints")
    run.add_argument("--log-every", type=int, default=10, metavar="N", help="steps per metrics.jsonl train line")
    run.add_argument("--eval-every", type=int, default=500, metavar="N", help="steps between evaluations (0: end only)")
    run.add_argument("--eval-batches", type=int, default=20, metavar="N", help="batches per evaluation")
    run.add_argument("--save-every", type=int, default=1000, metavar="N",
                     help="steps between checkpoints (0: end only)")
    run.add_argument("--keep-last", type=int, default=3, metavar="K", help="checkpoints to keep (0: all)")
    run.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint in RUN")
    run.add_argument("--threads", type=int, metavar="N", help="CPU threads per process (default: cores / processes)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
