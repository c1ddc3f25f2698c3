"""A real interactive ``copier copy`` in a terminal, driven key by key.

The questionnaire is answered the way a marketer answers it: space and enter
in the flow list, typed text, an arrow key in a choice, a key for a yes/no
question, and one refused answer that is corrected on the spot. Questions this
test does not script are answered with their defaults, so that a question
added to copier.yml does not break it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pexpect
import pytest
from template_repo import load_filters, load_questions, read_answers

pytest_plugins = ["template_repo"]
pytestmark = pytest.mark.usefixtures("isolated_env")

ANSI_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, modes
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: window titles
    r"|\x1b[@-Z\\-_]"  # two-character escapes
)
CURSOR_POSITION_REQUEST = "\x1b[6n"
# Say the cursor is top left: prompt_toolkit then knows the terminal's height
# and shows validation messages, which it hides from terminals that never
# answer.
CURSOR_POSITION_REPLY = "\x1b[1;1R"
PROMPT_LINE = re.compile(r"🎤 ([^\r\n]*?)[ \t]*\r*\n")
CLEAR_LINE = "\x15"  # Ctrl-U: delete the prefilled default before typing.
ENTER = "\r"
DOWN = "\x1b[B"
SPACE = " "
TERMINAL_SIZE = (40, 200)  # rows, columns: wide enough that nothing wraps.
# Generous: the copy renders, formats with ruff and commits before it exits.
SCREEN_TIMEOUT_SECONDS = 30.0
EXIT_TIMEOUT_SECONDS = 120.0


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences, leaving the text a person reads."""
    return ANSI_ESCAPE.sub("", text)


def squeeze(text: str) -> str:
    """Collapse runs of whitespace, so wrapped or padded text compares equal."""
    return " ".join(text.split())


@dataclass
class Terminal:
    """The screen of a program in a pseudo-terminal, read as plain text."""

    child: pexpect.spawn[str]
    raw: str = ""
    mark: int = 0
    replied: int = 0
    finished: bool = False

    def pump(self) -> None:
        """Read what the program wrote, answering cursor position requests."""
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=0.2)
        except pexpect.TIMEOUT:
            pass  # Nothing new on the screen within the poll interval.
        except pexpect.EOF:
            self.finished = True
        while self.replied < self.raw.count(CURSOR_POSITION_REQUEST):
            self.child.send(CURSOR_POSITION_REPLY)
            self.replied += 1

    def unread(self) -> str:
        """The plain text written since the last thing waited for."""
        return strip_ansi(self.raw[self.mark :])

    def wait_for(self, text: str) -> None:
        """Wait until ``text`` appears on screen, and move past it."""
        deadline = time.monotonic() + SCREEN_TIMEOUT_SECONDS
        while squeeze(text) not in squeeze(self.unread()):
            if self.finished or time.monotonic() > deadline:
                pytest.fail(f"{text!r} never appeared; the screen:\n{self.unread()}")
            self.pump()
        self.mark = len(self.raw)

    def next_prompt(self, seen: set[str]) -> str | None:
        """Wait for a question not in ``seen``; None once the program exits."""
        deadline = time.monotonic() + EXIT_TIMEOUT_SECONDS
        while True:
            for prompt in PROMPT_LINE.findall(self.unread()):
                if prompt not in seen:
                    return str(prompt)
            if self.finished:
                return None
            if time.monotonic() > deadline:
                pytest.fail(
                    f"No new question and no exit; the screen:\n{self.unread()}"
                )
            self.pump()

    def press(self, keys: str) -> None:
        """Type ``keys``."""
        self.child.send(keys)


@dataclass
class Step:
    """Keys to type for a question, then the text that shows they landed."""

    keys: str
    shows: str | None = None


@dataclass
class Script:
    """How each scripted question is answered, and what the answers file keeps."""

    steps: dict[str, list[Step]] = field(default_factory=dict)
    recorded: dict[str, object] = field(default_factory=dict)

    def type_text(self, question: str, text: str) -> None:
        """Replace the default with ``text``."""
        self.steps[question] = [Step(CLEAR_LINE + text + ENTER)]
        self.recorded[question] = text


def marketer_script(package_refusal: str) -> Script:
    """The answers this test gives, with the refusals it expects on the way."""
    script = Script()
    script.steps["campaign_flows"] = [
        Step("", shows="● Email nurture sequence"),
        Step(SPACE, shows="○ Email nurture sequence"),
        Step(
            ENTER,
            shows="Validation error for question 'campaign_flows': "
            "Pick at least one campaign flow",
        ),
        Step(SPACE, shows="● Email nurture sequence"),
        Step(ENTER),
    ]
    script.recorded["campaign_flows"] = ["nurture"]
    script.type_text("project_name", "Growth Lab")
    script.steps["project_slug"] = [Step(ENTER)]
    script.recorded["project_slug"] = "growth-lab"
    script.steps["package_name"] = [
        Step(
            CLEAR_LINE + "prefect" + ENTER,
            shows=f"Validation error for question 'package_name': {package_refusal}",
        ),
        Step(CLEAR_LINE + "growth_lab" + ENTER),
    ]
    script.recorded["package_name"] = "growth_lab"
    script.type_text("project_description", "Nurtures trial sign-ups into buyers.")
    script.type_text("author_name", "Growth Team")
    script.type_text("author_email", "growth@example.org")
    script.steps["email_provider"] = [Step(DOWN + ENTER)]
    script.recorded["email_provider"] = "smtp"
    script.steps["discord_alerts"] = [Step("n")]
    script.recorded["discord_alerts"] = False
    script.type_text("email_count", "5")
    script.recorded["email_count"] = 5
    script.type_text("cadence_days", "2")
    script.recorded["cadence_days"] = 2
    script.type_text("daily_cap", "2")
    script.recorded["daily_cap"] = 2
    script.steps["schedule_kind"] = [Step(DOWN + ENTER)]
    script.recorded["schedule_kind"] = "interval"
    script.type_text("schedule_interval_minutes", "15")
    script.recorded["schedule_interval_minutes"] = 15
    script.type_text("time_zone", "Europe/Berlin")
    script.type_text("send_window", "08:30-20:00")
    return script


def test_interactive_copy(template_src: Path, tmp_path: Path) -> None:
    """Every question answered by keyboard, one refused and corrected, renders."""
    questions = load_questions(template_src)
    by_prompt = {
        str(details.get("help", name)).strip(): name
        for name, details in questions.items()
    }
    refusal = load_filters(template_src).package_name_error("prefect")
    script = marketer_script(refusal)
    project = tmp_path / "project"
    command = ["-m", "copier", "copy", "--trust", "--vcs-ref", "HEAD"]
    child = pexpect.spawn(
        sys.executable,
        [*command, str(template_src), str(project)],
        env={**os.environ, "TERM": "xterm"},
        dimensions=TERMINAL_SIZE,
        encoding="utf-8",
        codec_errors="replace",
    )
    terminal = Terminal(child)

    asked: list[str] = []
    seen: set[str] = set()
    try:
        while (prompt := terminal.next_prompt(seen)) is not None:
            seen.add(prompt)
            question = by_prompt.get(prompt, prompt)
            asked.append(question)
            for step in script.steps.get(question, [Step(ENTER)]):
                if step.keys:
                    terminal.press(step.keys)
                if step.shows is not None:
                    terminal.wait_for(step.shows)
    finally:
        child.close(force=True)

    assert child.exitstatus == 0, terminal.unread()
    assert set(script.steps) <= set(asked), f"asked only {asked}"
    answers = read_answers(project)
    assert {name: answers[name] for name in script.recorded} == script.recorded
    assert (project / "src" / "growth_lab").is_dir()
