"""The package's dependencies: ``transformers`` is the reference for the tests and benchmarks only, never imported
by anything under ``bert/`` (README: "it is never imported by the package")."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap

from support import REPO

DEMO = REPO / "weights" / "bert-demo"
BLOCKED = "transformers"

# Run in a fresh interpreter: a finder placed first on sys.meta_path refuses ``transformers`` and every submodule of
# it, and records each attempt (also one that a ``try: import ... except ImportError`` would swallow). Then every
# module under bert/ is imported (walk_packages with an onerror that raises, so no package is skipped silently;
# bert.__main__ is run as ``python -m bert info``), and the CLI answers info, fill-mask, nsp and embed.
CHILD = textwrap.dedent("""
    import contextlib, importlib, io, json, pkgutil, runpy, sys

    assert BLOCKED not in sys.modules, "imported before the test could block it"
    attempts = []

    class Refuse:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == BLOCKED or name.startswith(BLOCKED + "."):
                attempts.append(name)
                raise ImportError(f"{name} is blocked: the package must not import it")
            return None

    sys.meta_path.insert(0, Refuse)

    import bert

    def fail(name):
        raise ImportError(f"could not import the package {name}")

    modules = [m.name for m in pkgutil.walk_packages(bert.__path__, "bert.", onerror=fail)]
    for name in modules:
        if name == "bert.__main__":  # it runs the CLI when imported: run it as `python -m bert info --model DEMO`
            sys.argv = ["bert", "info", "--model", DEMO]
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    runpy.run_module("bert", run_name="__main__", alter_sys=True)
                except SystemExit as done:
                    assert done.code == 0, f"python -m bert info exited with {done.code}"
        else:
            importlib.import_module(name)

    from bert.cli import main

    codes, outputs = {}, {}
    for command in (["info", "--model", DEMO],
                    ["fill-mask", "The capital of France is [MASK].", "--model", DEMO, "--json", "--top-k", "3"],
                    ["nsp", "It rained.", "The streets were wet.", "--model", DEMO, "--json"],
                    ["embed", "one text", "another text", "--model", DEMO, "--json", "--batch-size", "1"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            codes[command[0]] = main(command)
        outputs[command[0]] = out.getvalue()
    print(json.dumps({"modules": modules, "codes": codes, "outputs": outputs, "attempts": attempts,
                      "loaded": sorted(n for n in sys.modules if n == BLOCKED or n.startswith(BLOCKED + "."))}))
""")


def test_every_module_and_the_cli_work_with_transformers_unimportable() -> None:
    code = f"BLOCKED, DEMO = {BLOCKED!r}, {str(DEMO)!r}\n" + CHILD
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [] and report["loaded"] == [], report
    # every module file under bert/ was imported (walk_packages found them all)
    on_disk = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
               for p in (REPO / "bert").rglob("*.py")}
    assert on_disk - {"bert"} <= set(report["modules"]), on_disk - set(report["modules"])
    assert report["codes"] == {"info": 0, "fill-mask": 0, "nsp": 0, "embed": 0}, report["codes"]
    assert len(json.loads(report["outputs"]["fill-mask"])[0]) == 3
    assert set(json.loads(report["outputs"]["nsp"])) == {"is_next", "not_next", "logits"}
    assert len(json.loads(report["outputs"]["embed"])) == 2
    assert "layers 6, hidden 384" in report["outputs"]["info"]


def imported_names(tree: ast.AST) -> list[str]:
    """Every module an ``import``, ``from ... import``, ``importlib.import_module("...")`` or ``__import__("...")``
    in ``tree`` names."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ("import_module", "__import__", "find_spec") and isinstance(node.args[0].value, str):
                names.append(node.args[0].value)
    return names


def test_no_source_file_under_bert_imports_transformers() -> None:
    offenders = {}
    files = sorted((REPO / "bert").rglob("*.py"))
    assert len(files) > 50
    for path in files:
        names = imported_names(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found = [n for n in names if n == BLOCKED or n.startswith(BLOCKED + ".")]
        if found:
            offenders[str(path.relative_to(REPO))] = found
    assert offenders == {}
