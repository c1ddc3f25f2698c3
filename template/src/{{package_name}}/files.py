"""The rules every file marketers edit follows: no conflict markers, front matter.

campaign.yaml and the Markdown files in content/ are edited by hand and merged
by ``copier update``; each is checked here before anything is sent from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigurationError

CONFLICT_MARKER = re.compile(r"^(<{7}|>{7}|={7})( |$)", re.MULTILINE)
FRONT_MATTER_FENCE = "---"


def check_no_conflict_markers(path: Path, text: str) -> None:
    """Refuse a file that a ``copier update`` left with conflict markers."""
    marker = CONFLICT_MARKER.search(text)
    if marker is not None:
        line = text.count("\n", 0, marker.start()) + 1
        msg = (
            f"{path} line {line} has a merge conflict marker from 'copier update': "
            "keep the lines you want, delete the markers, and run again."
        )
        raise ConfigurationError(msg)


def split_front_matter(
    path: Path, text: str, *, required: str, example: str
) -> tuple[dict[str, Any], str]:
    """Split a Markdown file into its YAML front matter and its body.

    Args:
        path: The file, for messages.
        text: Its text.
        required: The front matter key the file must have, such as ``subject``.
        example: A line with that key, shown when the front matter is missing.

    Raises:
        ConfigurationError: There is no front matter, it is not valid YAML, or
            it lacks ``required``.
    """
    head, fence, body = text.partition(f"\n{FRONT_MATTER_FENCE}\n")
    if not text.startswith(FRONT_MATTER_FENCE) or not fence:
        msg = (
            f"{path} must start with a front matter between '---' lines, "
            f"holding at least a {required}: line, such as '{example}'."
        )
        raise ConfigurationError(msg)
    try:
        front = yaml.safe_load(head.removeprefix(FRONT_MATTER_FENCE))
    except yaml.YAMLError as exc:
        msg = f"{path}: the front matter is not valid YAML: {exc}"
        raise ConfigurationError(msg) from None
    if not isinstance(front, dict) or not str(front.get(required) or "").strip():
        msg = f"{path}: the front matter needs a {required}: line."
        raise ConfigurationError(msg)
    return front, body
