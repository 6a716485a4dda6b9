"""The README and docs/ stay true: every link and every file a command names exists, every
``sweeplab`` command names a real verb, and the README stays what a newcomer reads first."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sweeplab.cli.main import all_verbs

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")
FILE = re.compile(r"(?<![\w/.<-])((?:runs/configs|benchmarks|scripts|docs)/"
                  r"[\w./-]+\.(?:yaml|py|sh|md))")


def _code_lines(text: str) -> list[str]:
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
    lines = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line.strip() for line in joined.splitlines() if line.strip()]
    return lines


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_named_files_exist(page):
    text = page.read_text(encoding="utf-8")
    for target, _ in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        assert (page.parent / target).exists(), f"{page.name}: broken link {target}"
    for name in FILE.findall(text):
        if "<" in name or "*" in name or name.endswith("/x.yaml"):
            continue
        assert (ROOT / name).exists(), f"{page.name}: names {name}, which does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_sweeplab_command_names_a_real_verb(page):
    verbs = set(all_verbs())
    for line in _code_lines(page.read_text(encoding="utf-8")):
        line = line.split("#", 1)[0].strip()
        if not line.startswith(("sweeplab ", ".venv/bin/sweeplab ")):
            continue
        words = shlex.split(line.replace("<", "_").replace(">", "_"), posix=True)
        verb = words[1]
        assert verb in verbs or verb.startswith("-"), f"{page.name}: {line}"


def test_the_readme_is_what_a_newcomer_reads_first():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Quickstart" in text and "make demo" in text and "make test" in text
    assert "source .venv/bin/activate" in text
    assert len(text) <= 12_000, f"README.md is {len(text)} characters; move detail to docs/"
