"""README.md opens with the two newcomer commands, and CI runs the second one verbatim."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return handle.read()


def _first_code_block(text):
    match = re.search(r"```(?:bash)?\n(.*?)```", text, re.S)
    assert match, "README.md has no code block"
    return [line for line in match.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_install_and_demo_then_tests():
    readme = _read("README.md")
    first_block_start = readme.index("```")
    assert readme[:first_block_start].count("\n") <= 3, "the commands must open the README"
    commands = _first_code_block(readme)
    assert len(commands) == 2
    demo, tests = commands
    assert "pip install" in demo and "face-gcn demo" in demo
    assert "pip install" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _first_code_block(_read("README.md"))[1]
    ci_lines = [line.strip() for line in _read(".ci", "run").splitlines()]
    normalised = [line.replace("pip install -q ", "pip install ") for line in ci_lines]
    assert test_command in normalised, "`.ci/run` must run README.md's test command"
