"""The documentation cannot drift from the code: the MkDocs site builds with ``--strict`` (no broken link, anchor or
API reference), every ``bert ...`` command line in README's and the site's code blocks parses with the real command's
argument parser, every ``--help`` fits a screen, and the sub-commands README lists are those ``bert --help`` lists."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bert.cli import SCREEN_LINES, build_parser, main

ROOT = Path(__file__).resolve().parent.parent
SCREEN_COLUMNS = 80


def documentation_pages() -> list[Path]:
    """README and every Markdown page of the site (the lessons' README and the demo model's card through their links
    in docs/)."""
    pages = [ROOT / "README.md"]
    for folder, _, files in os.walk(ROOT / "docs", followlinks=True):
        pages += sorted(Path(folder) / name for name in files if name.endswith(".md"))
    return pages


def command_lines(markdown: str) -> list[str]:
    """Every command line in the Markdown's fenced shell blocks (``bash``, ``sh``, ``console`` or no language),
    continuation lines joined, comment lines dropped."""
    lines, language, block = [], None, []
    for line in markdown.splitlines():
        fence = re.fullmatch(r"\s*```\s*([\w-]*)\s*", line)
        if fence and language is None:
            language, block = fence.group(1), []
        elif fence:
            if language in ("bash", "sh", "shell", "console", ""):
                joined = "\n".join(block).replace("\\\n", " ")
                lines += [c.strip() for c in joined.splitlines() if c.strip() and not c.strip().startswith("#")]
            language = None
        elif language is not None:
            block.append(line)
    return lines


def bert_arguments(line: str) -> list[list[str]]:
    """The arguments of each ``bert`` command on a shell line: ``bert ...``, ``python -m bert ...`` or ``torchrun ...
    -m bert ...``, alone or in a ``&&`` / ``;`` / ``|`` chain, after any ``VAR=value`` prefix."""
    words = shlex.split(line, comments=True)
    commands, current = [], []
    for word in [*words, "&&"]:
        if word in ("&&", "||", ";", "|"):
            while current and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", current[0]):
                current.pop(0)
            if current[:1] == ["bert"]:
                commands.append(current[1:])
            elif current[:1] in (["torchrun"], ["python"], ["python3"]) and "-m" in current:
                at = current.index("-m")
                if current[at + 1:at + 2] == ["bert"]:
                    commands.append(current[at + 2:])
            current = []
        else:
            current.append(word)
    return commands


def documented_commands() -> list[tuple[str, list[str]]]:
    """(page: line, arguments) of every ``bert`` command in the documentation's code blocks."""
    found = []
    for page in documentation_pages():
        for line in command_lines(page.read_text(encoding="utf-8")):
            for arguments in bert_arguments(line):
                found.append((f"{page.relative_to(ROOT)}: {line}", arguments))
    return found


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every sub-command's parser, nested ones included (``finetune qa``), by its words after ``bert``."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found[name] = child
                found.update({f"{name} {words}": grandchild for words, grandchild in subparsers(child).items()})
    return found


def test_the_site_builds_strictly_with_every_lesson_and_the_api_reference(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert done.returncode == 0, done.stdout + done.stderr
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert (site / "lessons" / notebook.stem / "index.html").is_file(), notebook.name
    for page, member in [("bert", "bert.BertForMaskedLM"), ("pipelines", "bert.inference.pipelines.fill_mask"),
                         ("pretraining", "bert.pretraining.PretrainConfig"),
                         ("finetune", "bert.finetune.FinetuneConfig"), ("engine", "bert.engine.Engine"),
                         ("precision", "bert.precision.Int8Linear"),
                         ("inference", "bert.inference.onnx_export.export_onnx")]:
        assert f'id="{member}"' in (site / "reference" / page / "index.html").read_text(), member
    assert (site / "demo-model" / "index.html").is_file() and (site / "demo-model" / "curves.png").is_file()
    assert not list(site.rglob("*.safetensors")), "the demo model's weights do not belong in the site"


def test_the_command_line_extraction_reads_chains_continuations_and_comments():
    markdown = ("text\n```bash\npip install -e '.[serve]' && bert serve --port 0   # a comment\n"
                "bert finetune qa --model m \\\n    --train t.json --out o\n# bert not-a-command\n"
                "torchrun --nproc_per_node 2 -m bert pretrain --data d\nCOLUMNS=80 bert --help\n```\n"
                "```python\nbert = 1\n```\n")
    commands = [arguments for line in command_lines(markdown) for arguments in bert_arguments(line)]
    assert commands == [["serve", "--port", "0"], ["finetune", "qa", "--model", "m", "--train", "t.json", "--out", "o"],
                        ["pretrain", "--data", "d"], ["--help"]]


def test_every_bert_command_line_in_readme_and_the_docs_parses_with_the_real_cli():
    commands = documented_commands()
    assert len(commands) >= 60, f"only {len(commands)} bert commands found: is the extraction broken?"
    parser = build_parser()
    refused = []
    for where, arguments in commands:
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(arguments)
        except SystemExit as stop:
            if stop.code != 0:  # --help exits 0
                refused.append(f"{where}\n    {stderr.getvalue().strip().splitlines()[-1]}")
    assert not refused, "documented commands the CLI refuses:\n" + "\n".join(refused)


def test_bert_help_and_every_sub_commands_help_fit_a_screen(monkeypatch):
    """A screen: 50 lines at 80 columns. A longer command shows its flags by name; --help-all shows them all."""
    assert SCREEN_LINES == 50
    monkeypatch.setenv("COLUMNS", str(SCREEN_COLUMNS))
    parser = build_parser()
    helps = {"": parser.format_help(), **{words: p.format_help() for words, p in subparsers(parser).items()}}
    assert len(helps) > 15
    too_long = {f"bert {words} --help".replace("  ", " "): text.count("\n") for words, text in helps.items()
                if text.count("\n") > SCREEN_LINES or max(map(len, text.splitlines())) > SCREEN_COLUMNS}
    assert not too_long, too_long
    for words, child in subparsers(parser).items():  # nothing is hidden: every flag is named in the short help
        flags = {s for a in child._actions for s in a.option_strings if s.startswith("--")}
        assert all(flag in helps[words] for flag in flags), words


def test_help_all_shows_every_option_with_its_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["distill", "--help-all"])
    assert stop.value.code == 0
    full = capsys.readouterr().out
    assert full.count("\n") > SCREEN_LINES
    assert "weight of the soft-target loss" in full and "(default 5.0)" in full


def test_help_all_gives_every_option_of_every_command_a_help_text_and_its_default():
    """README: "--help-all gives each option's help and default": every option (but --help/--help-all) of every
    command has a help text, and one whose default is a value (not None, not an off switch) names it."""
    import argparse

    missing = []
    for words, child in subparsers(build_parser()).items():
        for action in child._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction) or action.dest == "help_all":
                continue
            name = f"bert {words} {action.option_strings[0]}"
            text = action.help or ""
            if not text.strip():
                missing.append(f"{name}: no help")
            shown = action.default not in (None, False, argparse.SUPPRESS) and not isinstance(
                action, argparse.BooleanOptionalAction)
            if shown and "default" not in text:
                missing.append(f"{name}: default {action.default!r} not named")
    assert not missing, "\n".join(missing)


def test_the_sub_commands_readme_lists_are_those_bert_help_lists(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    listed = set(re.findall(r"^    ([a-z][a-z0-9-]*)", capsys.readouterr().out, flags=re.M))
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The main commands", 1)[1].split("\n## ", 1)[0]
    in_readme = {arguments[0] for line in command_lines(section) for arguments in bert_arguments(line)}
    assert listed == in_readme, f"only in bert --help: {listed - in_readme}; only in README: {in_readme - listed}"


def test_readme_links_point_at_files_and_headings_that_exist():
    readme = (ROOT / "README.md").read_text()
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", readme,
                                                                                            flags=re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (ROOT / path).exists(), target
        else:
            assert anchor in headings, target


def test_readme_python_example_compiles():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    for block in blocks:
        compile(block, "README.md", "exec")


def table_rows(markdown: str) -> list[list[tuple[int, int]]]:
    """Each Markdown table outside code blocks, as (line number, cell count) per row; pipes inside backticks or
    escaped (\\|) are not cell borders."""
    tables, current, fenced = [], [], False
    for number, line in enumerate(markdown.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        stripped = line.strip()
        if not fenced and stripped.startswith("|"):
            cells = re.sub(r"`[^`]*`|\\\|", "x", stripped).strip("|").split("|")
            current.append((number, len(cells)))
        elif current:
            tables.append(current)
            current = []
    return [*tables, current] if current else tables


def test_every_markdown_table_has_as_many_cells_in_each_row_as_in_its_header():
    """A table whose separator or rows have another number of cells than its header renders as text (GitHub and
    MkDocs both); so does one without a separator row."""
    separator = re.compile(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?")
    broken = []
    for page in documentation_pages():
        text = page.read_text(encoding="utf-8")
        lines = text.splitlines()
        for table in table_rows(text):
            header = table[0][1]
            if len(table) < 2 or not separator.fullmatch(lines[table[1][0] - 1].strip()):
                broken.append(f"{page.relative_to(ROOT)}:{table[0][0]}: no separator row")
            broken += [f"{page.relative_to(ROOT)}:{n}: {cells} cells, header {header}" for n, cells in table
                       if cells != header]
    assert not broken, "\n".join(broken)
