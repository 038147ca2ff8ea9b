"""The fenced code blocks of the Markdown docs, and the rewriting rules that make them runnable in a test.

Used by tests/test_docs.py. A block is a fence opened with ```python or ```bash (possibly indented, as
inside a list item) and closed with ```. Blocks with any other language or none (output samples, file
trees) are text and are not run. A marker on the last non-blank line before a fence says

    <!-- doc-test: skip: REASON -->               never run here (a TPU, Docker, a download, ...)
    <!-- doc-test: requires: MODULE[, MODULE] -->  an optional extra: skipped when a module is missing

Rules applied to each logical line (continuations joined) of a bash block, never to the doc itself:
- a trailing `# comment` is dropped (so flags can be appended);
- optional flags written in brackets, `[--flag=X]` or `[--a | --b]`, are dropped;
- of a line `A && B`, a part that is a `pip install ...` is dropped (the environment is already set up);
- flags from the test's override table are appended to the part that runs the matching command
  (absl and argparse let a later flag win), which shrinks long runs to a few steps.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable, Optional, Sequence

RUNNABLE = ("python", "bash")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<kind>skip|requires):\s*(?P<value>.+?)\s*-->\s*$")
_OPTIONAL_FLAGS = re.compile(r"\s+\[--[^\]]*\]")


@dataclasses.dataclass(frozen=True)
class Block:
    path: str  # relative to the repository root, with "/"
    line: int  # 1-based line of the opening fence
    lang: str
    text: str  # the body, dedented by the fence's indent
    skip_reason: Optional[str]
    requires: tuple[str, ...] = ()  # modules of an optional extra

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}"


def read_blocks(root: str, paths: Iterable[str]) -> list[Block]:
    """Every ```python / ```bash block of the Markdown files `paths` (relative to `root`), in file order.

    Raises:
      ValueError: a fence that is never closed, or a skip marker with no reason.
    """
    blocks = []
    for path in paths:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            lines = f.read().splitlines()
        i = 0
        while i < len(lines):
            opening = _FENCE.match(lines[i])
            if not opening:
                i += 1
                continue
            indent, lang = opening["indent"], opening["lang"]
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end == len(lines):
                raise ValueError(f"{path}:{i + 1}: code fence never closed")
            body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:end]]
            if lang in RUNNABLE:
                kind, value = _marker(lines, i, path)
                blocks.append(Block(path, i + 1, lang, "\n".join(body) + "\n", value if kind == "skip" else None,
                                    tuple(m.strip() for m in value.split(",")) if kind == "requires" else ()))
            i = end + 1
    return blocks


def _marker(lines: Sequence[str], fence: int, path: str) -> tuple[Optional[str], str]:
    """(kind, value) of the marker on the last non-blank line before the fence, or (None, "")."""
    previous = next((lines[j] for j in range(fence - 1, -1, -1) if lines[j].strip()), "")
    if "doc-test:" not in previous:
        return None, ""
    marker = _MARKER.match(previous)
    if not marker:
        raise ValueError(f"{path}:{fence + 1}: malformed marker {previous.strip()!r}; write "
                         "<!-- doc-test: skip: REASON --> or <!-- doc-test: requires: MODULE -->")
    return marker["kind"], marker["value"]


def logical_lines(script: str) -> list[str]:
    """The commands of a bash block: backslash continuations joined, blank and comment lines left out."""
    commands, current = [], ""
    for line in script.splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip() and not current.lstrip().startswith("#"):
            commands.append(current.strip())
        current = ""
    if current.strip():
        commands.append(current.strip())
    return commands


def strip_comment(command: str) -> str:
    """`command` without a trailing `# ...` comment (a `#` after whitespace, outside quotes)."""
    quote = None
    for i, char in enumerate(command):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip()
    return command


def rewrite_command(command: str, overrides: Sequence[tuple[re.Pattern, str]]) -> str:
    """One logical line after the rules of the module docstring; "" when nothing is left to run.

    `overrides`: (pattern, flags) pairs; `flags` are appended to each `&&` part the pattern matches.
    """
    command = _OPTIONAL_FLAGS.sub("", strip_comment(command))
    parts = []
    for part in (p.strip() for p in command.split("&&")):
        if re.match(r"(python -m )?pip3? install\b", part):
            continue
        extra = [flags for pattern, flags in overrides if pattern.search(part)]
        parts.append(" ".join([part, *extra]))
    return " && ".join(parts)


def rewrite_bash(script: str, overrides: Sequence[tuple[re.Pattern, str]]) -> list[str]:
    """The commands to run for a bash block, in order (see `rewrite_command`)."""
    return [c for c in (rewrite_command(line, overrides) for line in logical_lines(script)) if c]
