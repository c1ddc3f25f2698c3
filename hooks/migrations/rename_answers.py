"""Rename answers in a project's ``.copier-answers.yml`` before ``copier update``.

Copier runs this from a ``_migrations`` entry, in the project's folder, when a
template version renames a question::

    python hooks/migrations/rename_answers.py old_name=new_name [old2=new2 ...]

Only the key of each renamed answer changes: comments, order, quoting and every
other byte of the file stay as they were. Running it twice changes nothing. It
refuses, and writes nothing, when the new name already holds a different value.

Standard library only: it runs with the Python that runs Copier.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ANSWERS_FILE = ".copier-answers.yml"
EXIT_REFUSED = 1
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A top-level mapping key at the start of a line: plain, 'single' or "double"
# quoted, then a colon that ends the line or is followed by whitespace.
KEY_LINE = re.compile(
    r"""^(?P<key>[A-Za-z_][A-Za-z0-9_]*|'[^'\n]*'|"[^"\n]*")[ \t]*:(?=[ \t\r\n]|$)"""
)


class RenameRefusedError(Exception):
    """A rename that would lose an answer: the file is left as it was."""


@dataclass(frozen=True)
class Rename:
    """One answer to rename, from ``old`` to ``new``."""

    old: str
    new: str


@dataclass
class Entry:
    """A top-level answer: its key, where the key ends, the lines it spans."""

    key: str
    key_end: int
    start: int
    end: int


def parse_rename(argument: str) -> Rename:
    """Parse an ``old=new`` command-line argument."""
    old, sep, new = argument.partition("=")
    if not sep or not NAME_PATTERN.fullmatch(old) or not NAME_PATTERN.fullmatch(new):
        raise argparse.ArgumentTypeError(
            f"expected OLD=NEW with two answer names, such as 'old_name=new_name', "
            f"got {argument!r}"
        )
    if old == new:
        raise argparse.ArgumentTypeError(
            f"the old and new names are the same in {argument!r}"
        )
    return Rename(old, new)


def unquote(key: str) -> str:
    """Return a YAML key without the quotes around it."""
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "'\"":
        return key[1:-1]
    return key


def continues_value(line: str) -> bool:
    """Tell whether a line belongs to the value of the key above it."""
    indented = line[:1] in (" ", "\t")
    list_item = line.startswith("-") and line[1:2] in ("", " ", "\t", "\r", "\n")
    return indented or list_item


def find_entries(lines: list[str]) -> list[Entry]:
    """Find each top-level key and the lines of its value, trailing blanks aside."""
    entries: list[Entry] = []
    for index, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if match is not None:
            key = unquote(match["key"])
            entries.append(Entry(key, match.end("key"), index, index + 1))
        elif entries and entries[-1].end == index and continues_value(line):
            entries[-1].end = index + 1
        elif entries and entries[-1].end == index and not line.strip():
            # A blank line inside a block scalar or a list belongs to the value
            # only if the value goes on after it.
            following = next((later for later in lines[index:] if later.strip()), "")
            if continues_value(following):
                entries[-1].end = index + 1
    return entries


def value_text(lines: list[str], entry: Entry) -> str:
    """Return the text of an answer's value, for comparing two answers."""
    first = KEY_LINE.sub("", lines[entry.start], count=1)
    parts = [first, *lines[entry.start + 1 : entry.end]]
    return "\n".join(part.rstrip() for part in parts).strip()


def rename_one(lines: list[str], rename: Rename) -> tuple[list[str], str]:
    """Apply one rename to the lines of an answers file.

    Returns:
        The new lines and a sentence saying what was done.

    Raises:
        RenameRefusedError: The new name already holds a different value.
    """
    entries = {entry.key: entry for entry in find_entries(lines)}
    old = entries.get(rename.old)
    new = entries.get(rename.new)
    if old is None:
        state = "already renamed" if new is not None else "nothing to rename"
        return lines, f"No answer named {rename.old!r}: {state}."
    if new is None:
        renamed = rename.new + lines[old.start][old.key_end :]
        return [*lines[: old.start], renamed, *lines[old.start + 1 :]], (
            f"Renamed the answer {rename.old!r} to {rename.new!r}."
        )
    if value_text(lines, old) != value_text(lines, new):
        raise RenameRefusedError(
            f"Cannot rename the answer {rename.old!r} to {rename.new!r}: "
            f"{rename.new!r} already holds a different value "
            f"({value_text(lines, new)!r}, not {value_text(lines, old)!r}). "
            f"Delete the one you do not want from the answers file, commit, "
            f"and run the update again."
        )
    return [*lines[: old.start], *lines[old.end :]], (
        f"Removed the answer {rename.old!r}: {rename.new!r} holds the same value."
    )


def rename_answers(text: str, renames: list[Rename]) -> tuple[str, list[str]]:
    """Apply the renames, in order, to the text of an answers file.

    Returns:
        The new text and one sentence per rename saying what was done.

    Raises:
        RenameRefusedError: A new name already holds a different value.
    """
    lines = [line for line in re.split(r"(?<=\n)", text) if line]
    reports = []
    for rename in renames:
        lines, report = rename_one(lines, rename)
        reports.append(report)
    return "".join(lines), reports


def main(argv: list[str] | None = None) -> int:
    """Rename the answers named on the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        description="Rename answers in a Copier answers file, keeping the rest."
    )
    parser.add_argument(
        "renames", nargs="+", type=parse_rename, metavar="OLD=NEW", help="a rename"
    )
    parser.add_argument(
        "--answers-file",
        type=Path,
        default=Path(DEFAULT_ANSWERS_FILE),
        help=f"the answers file (default: {DEFAULT_ANSWERS_FILE})",
    )
    arguments = parser.parse_args(argv)
    path: Path = arguments.answers_file

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        print(
            f"No answers file at {path}: run this in the project's folder, or "
            f"pass --answers-file.",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    # surrogateescape: whatever the bytes are, the ones not renamed come back.
    text = data.decode("utf-8", "surrogateescape")
    try:
        new_text, reports = rename_answers(text, arguments.renames)
    except RenameRefusedError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_REFUSED

    if new_text != text:
        path.write_bytes(new_text.encode("utf-8", "surrogateescape"))
    for report in reports:
        print(f"{path}: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
