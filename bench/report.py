"""docs/benchmarks.md is written by several commands, each measuring its own sections: one that rewrites
the file keeps the sections it did not measure."""

from __future__ import annotations

from pathlib import Path


def sections(text: str) -> dict[str, str]:
    """Second-level heading -> the section's text (heading included, up to the next one)."""
    found = {}
    for part in ("\n" + text).split("\n## ")[1:]:
        heading = "## " + part.split("\n", 1)[0]
        found[heading] = ("## " + part).rstrip("\n") + "\n"
    return found


def keeping_other_sections(text: str, path: Path) -> str:
    """``text`` followed by the sections of the file at ``path`` that ``text`` does not have, in their order."""
    if not path.exists():
        return text
    new = sections(text)
    kept = [body for heading, body in sections(path.read_text()).items() if heading not in new]
    return text.rstrip("\n") + "\n" + "".join("\n" + body for body in kept)
