"""Each setting is defined once (bert/settings.py): for PretrainConfig (``bert pretrain``), DistillConfig (``bert
distill``) and FinetuneConfig (``bert finetune classify|ner|qa``), every config field has exactly one CLI flag, its
name, with a help text; the flags' defaults are the dataclass's; every flag maps back to its own field; the older
flag spellings still parse; and pretraining's ``--resume`` refuses changed settings in one line naming each, but for
those a resumed run may change."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from test_pretrain_loop import TINY, train_events, write_corpus

from bert.cli import build_parser, main
from bert.data.config import PrepareConfig, TokenizerTrainingConfig
from bert.data.prepare import prepare_pretraining_data
from bert.data.tokenizer_training import train_tokenizer
from bert.errors import BertError
from bert.finetune import FinetuneConfig
from bert.pretraining import DistillConfig, PretrainConfig
from bert.settings import flag, free_on_resume, from_arguments, value_type

# (command, config class, the required arguments, the config those alone give, flags that are no config field:
# --args-file on every training command, which reads settings from a file, see bert.cli.args_file)
TASK_FLAGS = {"classify": {"text_column", "text_columns", "label_column"},
              "ner": {"label_names"},
              "qa": {"doc_stride", "max_query_len", "no_max_context", "train_articles", "eval_articles"}}
COMMANDS = [
    (("pretrain",), PretrainConfig, ["--data", "d", "--out", "o"], PretrainConfig(data="d", out="o"), {"args_file"}),
    (("distill",), DistillConfig, ["--data", "d", "--out", "o", "--teacher", "t"],
     DistillConfig(data="d", out="o", teacher="t"), {"args_file"}),
    *[(("finetune", task), FinetuneConfig, ["--model", "m", "--train", "f", "--out", "o"],
       FinetuneConfig(max_seq_len=384) if task == "qa" else FinetuneConfig(),  # help: "default 128; 384 for qa"
       {"model", "train", "eval", "out", "args_file", *TASK_FLAGS[task]}) for task in TASK_FLAGS],
    (("prepare",), PrepareConfig, ["f.txt", "--tokenizer", "t", "--out", "o"], PrepareConfig(),
     {"tokenizer", "out", "overwrite", "quiet"}),
    (("train-tokenizer",), TokenizerTrainingConfig, ["f.txt", "--vocab-size", "100", "--out", "o"],
     TokenizerTrainingConfig(), {"vocab_size", "out"}),
]
IDS = [" ".join(command) for command, *_ in COMMANDS]
# Engine settings (RunConfig) a command does not offer: pretraining keeps no best model, so it has no --patience.
NOT_OFFERED = {("pretrain",): {"patience"}, ("distill",): {"patience"}}


def offered(command: tuple[str, ...], config_class: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(config_class) if f.name not in NOT_OFFERED.get(command, set())]

# Every flag spelling of these commands before the settings were defined once (commit ecb49cf), README's and the
# scripts' included: each must still parse.
OLD_PRETRAIN = ("--data --config --init-from --out --objective --max-steps --time-budget --batch-size --grad-accum "
                "--lr --head-lr --warmup-steps --warmup-fraction --weight-decay --optimizer --max-grad-norm --bf16 "
                "--compile --gradient-checkpointing --dropout --seed --whole-word-masking --mask-prob "
                "--max-predictions-per-seq --log-every --eval-every --eval-batches --save-every --keep-last --resume "
                "--threads "
                "--no-progress").split()
OLD_DISTILL = [*OLD_PRETRAIN, *"--teacher --student-layers --student-config --temperature --alpha-ce --alpha-mlm "
                                "--alpha-cos".split()]
OLD_FINETUNE = ("--model --train --eval --eval-every --metric --patience --out --epochs --lr --batch-size "
                "--eval-batch-size --max-seq-len --warmup --weight-decay --grad-accum --max-grad-norm --seed "
                "--time-budget --max-steps --group-by-length --save-every --keep-last --resume "
                "--gradient-checkpointing --device --no-progress").split()
OLD_FLAGS = {"pretrain": OLD_PRETRAIN, "distill": OLD_DISTILL, "finetune": OLD_FINETUNE}
# ... and of these two, before their settings were defined once (commit 17fa78f).
OLD_DATA_FLAGS = {"prepare": ("--tokenizer --objective --out --max-seq-len --seed --short-seq-prob "
                              "--sentence-pair-prob --dupe-factor --eval-fraction --eval-files --format "
                              "--no-sentence-split --overwrite --quiet").split(),
                  "train-tokenizer": "--vocab-size --out --cased --min-frequency --format".split()}


def command_parser(*names: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in names:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = subparsers.choices[name]
    return parser


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def other_value(field: dataclasses.Field, kind: type, default: Any) -> tuple[Any, list[str]]:
    """A value of the field other than ``default`` (where the type allows one) and the CLI tokens that give it."""
    if kind is bool:
        return not default, [flag(field.name) if not default else "--no-" + flag(field.name)[2:]]
    choices = field.metadata.get("choices")
    if choices:
        value = next((c for c in choices if c != default), choices[0])
    elif kind is dict:
        value = {"hidden_dropout_prob": 0.25}
        return value, [flag(field.name), json.dumps(value)]
    elif kind is list:
        value = [f"{field.name}-1", f"{field.name}-2"]
        return value, [flag(field.name), *value]
    elif kind is int:
        value = (default or 0) + 3
    elif kind is float:
        value = 0.375
    else:
        value = f"{field.name}-value"
    return value, [flag(field.name), str(value)]


@pytest.mark.parametrize(("command", "config_class", "required", "_", "inputs"), COMMANDS, ids=IDS)
def test_every_config_field_has_exactly_one_flag_its_name_with_a_help_text(command, config_class, required, _,
                                                                           inputs) -> None:
    parser = command_parser(*command)
    actions = options(parser)
    fields = {f.name: f for f in offered(command, config_class)}
    assert {a.dest for a in actions} == set(fields) | inputs  # and no flag sets anything else
    for name, field in fields.items():
        mine = [a for a in actions if a.dest == name]
        assert len(mine) == 1, (name, [a.option_strings for a in mine])
        strings = mine[0].option_strings
        negative = ["--no-" + flag(name)[2:]] if isinstance(mine[0], argparse.BooleanOptionalAction) else []
        assert strings == [flag(name), *field.metadata.get("aliases", ()), *negative], name
        assert field.metadata.get("help", "").strip() and mine[0].help.startswith(field.metadata["help"]), name
        assert mine[0].required == (name in ("data", "out", "teacher")), name
    help_text = parser.format_help()
    assert all(flag(name) in help_text for name in fields)


@pytest.mark.parametrize(("command", "config_class", "required", "expected", "_"), COMMANDS, ids=IDS)
def test_the_flags_defaults_are_the_dataclass_defaults(command, config_class, required, expected, _) -> None:
    args = command_parser(*command).parse_args(required)
    assert from_arguments(config_class, args) == expected


@pytest.mark.parametrize(("command", "config_class", "required", "expected", "_"), COMMANDS, ids=IDS)
def test_every_flag_sets_its_own_field_and_no_other(command, config_class, required, expected, _) -> None:
    parser = command_parser(*command)
    hints = typing.get_type_hints(config_class)
    for field in offered(command, config_class):
        default = getattr(expected, field.name)
        value, tokens = other_value(field, value_type(hints[field.name]), default)
        config = from_arguments(config_class, parser.parse_args([*required, *tokens]))
        assert config == dataclasses.replace(expected, **{field.name: value}), tokens
        for alias in field.metadata.get("aliases", ()):
            config = from_arguments(config_class, parser.parse_args([*required, alias, *tokens[1:]]))
            assert config == dataclasses.replace(expected, **{field.name: value}), alias


@pytest.mark.parametrize("command", ["pretrain", "distill", "finetune classify", "finetune ner", "finetune qa"])
def test_every_older_flag_spelling_still_parses(command: str) -> None:
    parser = command_parser(*command.split())
    known = {s for a in options(parser) for s in a.option_strings}
    assert set(OLD_FLAGS[command.split()[0]]) <= known, set(OLD_FLAGS[command.split()[0]]) - known
    args = parser.parse_args(["--data", "d", "--out", "o", "--teacher", "t", "--mask-prob", "0.25", "--no-progress",
                              "--dropout", "0", "--student-config", "tiny"] if command == "distill" else
                             ["--data", "d", "--out", "o", "--mask-prob", "0.25", "--no-progress"]
                             if command == "pretrain" else
                             ["--model", "m", "--train", "f", "--out", "o", "--no-progress"])
    assert args.progress is False
    if command != "finetune":
        assert getattr(args, "mask_prob", 0.25) == 0.25


@pytest.mark.parametrize("command", OLD_DATA_FLAGS)
def test_every_older_data_flag_spelling_still_parses_to_the_same_settings(command: str) -> None:
    parser = command_parser(command)
    known = {s for a in options(parser) for s in a.option_strings}
    assert set(OLD_DATA_FLAGS[command]) <= known, set(OLD_DATA_FLAGS[command]) - known
    if command == "prepare":
        args = parser.parse_args(["f.txt", "--tokenizer", "t", "--out", "o", "--no-sentence-split", "--eval-files",
                                  "a.txt", "b.txt", "--quiet"])
        assert from_arguments(PrepareConfig, args) == PrepareConfig(sentence_split=False, eval_files=["a.txt", "b.txt"])
        assert args.quiet and args.files == ["f.txt"]
    else:
        args = parser.parse_args(["f.txt", "--vocab-size", "100", "--out", "o", "--cased", "--min-frequency", "1"])
        assert from_arguments(TokenizerTrainingConfig, args) == TokenizerTrainingConfig(cased=True, min_frequency=1)


def test_the_settings_a_resumed_run_may_change_are_those_readme_lists() -> None:
    """docs/guides/finetuning.md: "--time-budget, --device, --eval-batch-size, --save-every, --keep-last,
    --gradient-checkpointing, --report-to and --wandb-project may change" (and the progress bar, and --resume itself).
    Pretraining has threads besides the device, and no eval batch size. Both follow a new --max-steps (a shorter plan
    after Ctrl-C): the engine's settings are one type (RunConfig), so what the engine may change on resume is the same
    for every task."""
    assert free_on_resume(FinetuneConfig) == {"time_budget", "device", "eval_batch_size", "save_every", "keep_last",
                                              "gradient_checkpointing", "progress", "resume", "max_steps",
                                              "report_to", "wandb_project"}  # trackers only read the metrics
    assert free_on_resume(PretrainConfig) == {"time_budget", "device", "threads", "save_every", "keep_last",
                                              "gradient_checkpointing", "progress", "resume", "out", "max_steps",
                                              "probe", "report_to", "wandb_project",  # probes only read the model
                                              "position_init"}  # how a fresh table starts: a resumed run loads its own
    # The student's teacher may be another spelling of the same weights: --resume compares their digest instead.
    assert free_on_resume(DistillConfig) == free_on_resume(PretrainConfig) | {"teacher"}


# ---- pretraining's --resume with other settings ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("settings-data")
    write_corpus(root / "corpus.txt", documents=30)
    train_tokenizer([root / "corpus.txt"], 120, root / "tokenizer", min_frequency=1)
    prepare_pretraining_data([root / "corpus.txt"], root / "tokenizer", root / "data", max_seq_len=32,
                             eval_fraction=0.1, progress=False)
    return root / "data"


def pretrain_argv(data: Path, config: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--data", str(data), "--config", str(config), "--out", str(out), "--max-steps", "2",
            "--batch-size", "4", "--lr", "3e-3", "--warmup-steps", "1", "--log-every", "1", "--eval-every", "0",
            "--save-every", "1", "--no-progress", "--threads", "1", *extra]


def test_pretraining_resume_with_other_settings_is_one_line_naming_each_and_free_ones_may_change(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    assert main(pretrain_argv(data, config, run)) == 0
    capsys.readouterr()

    changed = ["--lr", "4e-3", "--seed", "1", "--mask-prob", "0.2", "--dropout", "0.1", "--resume"]
    assert main(pretrain_argv(data, config, run, *changed)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bert pretrain: error: --resume: "), err
    named = re.search(r"was made with other settings: (.*); resume with the same settings", err)
    assert named, err
    # the recipe's values count as settings: 0.5 → 0.25 masking and dropout 0 from random weights
    assert named.group(1).split(", ") == ["lr 0.003 (now 0.004)", "seed 0 (now 1)", "mask-prob 0.5 (now 0.2)",
                                          "final-mask-prob 0.25 (now 0.2)", "dropout 0.0 (now 0.1)"]
    assert [e["step"] for e in train_events(run)] == [1, 2]  # nothing was trained or cut back

    # What may change: the length, the time budget, threads, checkpoint cadence and count, gradient checkpointing,
    # the progress bar; and the same data folder spelled another way is the same data.
    free = ["--max-steps", "4", "--time-budget", "30", "--threads", "2", "--save-every", "3", "--keep-last", "1",
            "--gradient-checkpointing", "--progress", "--resume"]
    argv = pretrain_argv(Path(os.path.relpath(data)), config, run, *free)  # the same data, a relative path
    assert main(argv) == 0, capsys.readouterr().err
    assert "resuming from" in capsys.readouterr().err
    assert [e["step"] for e in train_events(run)] == [1, 2, 3, 4]


def test_the_engine_owns_its_settings_and_a_task_default_that_differs_says_why() -> None:
    """Every setting the engine reads is RunConfig's, declared once: pretraining, distillation and fine-tuning
    extend it. Where fine-tuning's default differs from the engine's, its help says why, naming pretraining's
    value; pretraining leaves the recipe's settings unset (None: bert.pretraining.recipe fills them in, its help
    says with what); everywhere else the tasks keep the engine's default and help."""
    from bert.engine.config import RunConfig

    engine = {f.name: f for f in dataclasses.fields(RunConfig)}
    assert {"lr", "max_steps", "time_budget", "eval_every", "save_every", "patience", "bf16", "compile",
            "resume", "warmup_fraction", "seed"} <= set(engine)
    for config_class in (PretrainConfig, DistillConfig, FinetuneConfig):
        assert issubclass(config_class, RunConfig)
        task = {f.name: f for f in dataclasses.fields(config_class)}
        for name, field in engine.items():
            if task[name].default == field.default:
                assert task[name].metadata["help"] == field.metadata["help"], (config_class.__name__, name)
            elif config_class is FinetuneConfig:
                assert "pretraining" in task[name].metadata["help"], name
            else:
                assert name in {"lr", "warmup_fraction", "bf16"} and task[name].default is None, name
                assert "from random weights" in task[name].metadata["help"], name
    differing = {f.name for f in dataclasses.fields(FinetuneConfig) if f.name in engine
                 and f.default != engine[f.name].default}
    assert differing == {"lr", "warmup_fraction", "seed", "eval_every", "save_every"}


@pytest.mark.parametrize(("config", "message"), [
    (PretrainConfig(data="d", out="o", max_steps=1, patience=2), "--patience: pretraining keeps no best model"),
    (PretrainConfig(data="d", out="o", max_steps=1, lr=0), "--lr must be positive"),
    (FinetuneConfig(lr=0), "--lr must be positive"),
    (FinetuneConfig(warmup_fraction=1.5), "--warmup-fraction must be in [0, 1)"),
    (FinetuneConfig(patience=0), "--patience must be at least 1 evaluation"),
])
def test_one_validate_words_the_engines_checks_alike_for_every_task(config, message) -> None:
    with pytest.raises(BertError, match=re.escape(message)):
        config.validate()
