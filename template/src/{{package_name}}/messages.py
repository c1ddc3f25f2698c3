"""Turn a content file and a lead into an email: subject, HTML and plain text.

Content files are Markdown with a YAML front matter (``subject``,
``preheader``) and Jinja variables. They are rendered in a sandbox with strict
variables, so a typo in a variable name is caught when the campaign is
checked, before any lead receives a broken email. Lead data is escaped: a
first name cannot inject HTML.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt

from .campaign import Campaign, Sequence
from .channels.base import OutgoingEmail
from .errors import ConfigurationError
from .files import check_no_conflict_markers, split_front_matter
from .store import Lead

SIGNATURE_LENGTH = 22
SAMPLE_FIRST_NAME = "Sam"
NO_FIRST_NAME = "there"
# Stand-ins for the first name while a step is rendered once for all leads:
# letters only, so that Markdown passes them through untouched.
NAME_SLOT = "Xqzfirstnamexqz"
OTHER_NAME_SLOT = "Yqzfirstnameyqz"

HTML_LAYOUT = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{subject}</title></head>
<body style="margin:0;padding:0;background:#f6f6f6;">
<span style="display:none;max-height:0;overflow:hidden;">{preheader}</span>
<div style="max-width:600px;margin:0 auto;padding:24px;background:#ffffff;\
font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#222;">
{body}
<hr style="border:none;border-top:1px solid #ddd;margin:32px 0 16px;">
<p style="font-size:12px;color:#777;">You get these emails because you signed up \
with {brand}. <a href="{unsubscribe_url}">Unsubscribe</a> at any time.<br>
{postal_address}</p>
</div>
</body>
</html>
"""
TEXT_FOOTER = """

--
You get these emails because you signed up with {brand}.
Unsubscribe: {unsubscribe_url}
{postal_address}
"""


@dataclass(frozen=True, slots=True)
class EmailTemplate:
    """One content file, parsed and compiled."""

    path: Path
    subject: Any
    preheader: Any
    body: Any

    @classmethod
    def load(cls, path: Path, environment: SandboxedEnvironment) -> EmailTemplate:
        """Read and compile a content file.

        Raises:
            ConfigurationError: The file is missing, has no front matter with a
                subject, or is not a valid template.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            msg = (
                f"{path} is missing: create it, or remove what sends it "
                "from campaign.yaml."
            )
            raise ConfigurationError(msg) from None
        check_no_conflict_markers(path, text)
        front, body = split_front_matter(
            path, text, required="subject", example="subject: Welcome aboard"
        )
        try:
            return cls(
                path,
                environment.from_string(str(front["subject"])),
                environment.from_string(str(front.get("preheader", ""))),
                environment.from_string(body),
            )
        except TemplateError as exc:
            msg = f"{path}: {exc}. Check the {{{{ }}}} and {{% %}} tags."
            raise ConfigurationError(msg) from None

    def render(self, variables: dict[str, Any]) -> tuple[str, str, str]:
        """Render subject, preheader and Markdown body.

        Raises:
            ConfigurationError: The content uses a variable that does not exist.
        """
        try:
            subject = " ".join(self.subject.render(variables).split())
            preheader = " ".join(self.preheader.render(variables).split())
            body = self.body.render(variables).strip() + "\n"
        except TemplateError as exc:
            names = ", ".join(sorted(variables))
            msg = f"{self.path}: {exc}. The variables you can use are: {names}."
            raise ConfigurationError(msg) from None
        return subject, preheader, body


@dataclass(frozen=True, slots=True)
class RenderedStep:
    """A step rendered with ``NAME_SLOT`` where each lead's first name goes."""

    subject: str
    preheader: str
    body: str
    body_html: str


class Composer:
    """Builds each lead's email for a sequence step.

    Args:
        campaign: The checked campaign.
        content_dir: The folder of content files.
        public_url: Where the project's receiver answers, for unsubscribe links.
        link_secret: The key that signs unsubscribe links.
        project: The project's slug, part of every idempotency key.
    """

    def __init__(
        self,
        campaign: Campaign,
        content_dir: Path,
        *,
        public_url: str,
        link_secret: str,
        project: str,
    ) -> None:
        self.campaign = campaign
        self.content_dir = content_dir
        self.public_url = public_url.rstrip("/")
        self.link_secret = link_secret
        self.project = project
        self._environment = SandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self._markdown = MarkdownIt("commonmark", {"html": False, "typographer": True})
        self._templates: dict[str, EmailTemplate] = {}
        self._rendered: dict[tuple[int, str], RenderedStep | None] = {}

    def template(self, slug: str) -> EmailTemplate:
        """Return the compiled content file for a step, loading it once."""
        if slug not in self._templates:
            path = self.content_dir / f"{slug}.md"
            self._templates[slug] = EmailTemplate.load(path, self._environment)
        return self._templates[slug]

    def check(self, sequence: Sequence) -> None:
        """Render every step for a sample lead, so mistakes show before a send.

        Raises:
            ConfigurationError: A content file is missing or broken.
        """
        sample = Lead(0, "lead@example.com", SAMPLE_FIRST_NAME, None)
        for index in range(len(sequence.steps)):
            self.template(sequence.steps[index].slug).render(
                self.variables(sample, sequence, index)
            )

    def variables(self, lead: Lead, sequence: Sequence, index: int) -> dict[str, Any]:
        """The variables a content file can use for this lead and step."""
        steps = sequence.steps
        is_last = index == len(steps) - 1
        next_step_days = 0 if is_last else steps[index + 1].day - steps[index].day
        return {
            **self.common_variables(lead),
            "step": {"number": index + 1, "total": len(steps), "is_last": is_last},
            "next_step_days": next_step_days,
        }

    def compose(
        self,
        lead: Lead,
        sequence: Sequence,
        index: int,
        *,
        idempotency_key: str,
        now: datetime,
    ) -> OutgoingEmail:
        """Build the email of step ``index`` of ``sequence`` for ``lead``."""
        name = lead.first_name or NO_FIRST_NAME
        rendered = self.rendered_step(sequence, index)
        if rendered is None:
            variables = self.variables(lead, sequence, index)
            subject, preheader, body = self.template(sequence.steps[index].slug).render(
                variables
            )
            body_html = self._markdown.render(body)
        else:
            subject = rendered.subject.replace(NAME_SLOT, name)
            preheader = rendered.preheader.replace(NAME_SLOT, name)
            body = rendered.body.replace(NAME_SLOT, name)
            body_html = rendered.body_html.replace(NAME_SLOT, escape(name, quote=False))
        return self._wrap(
            lead,
            subject,
            preheader,
            body,
            body_html,
            idempotency_key=idempotency_key,
            now=now,
            variables={
                "subject": subject,
                "preheader": preheader,
                "firstName": name,
                "step": index + 1,
            },
        )

    def compose_message(
        self,
        lead: Lead,
        slug: str,
        extra: dict[str, Any],
        *,
        idempotency_key: str,
        now: datetime,
    ) -> OutgoingEmail:
        """Build the email of content file ``slug`` for ``lead``, rendered for them.

        Args:
            lead: Who it goes to.
            slug: The content file's name without ``.md``.
            extra: Variables on top of the ones every email has, such as a
                confirmation link.
            idempotency_key: The send's ledger key.
            now: The send time.
        """
        variables = {**self.common_variables(lead), **extra}
        subject, preheader, body = self.template(slug).render(variables)
        return self._wrap(
            lead,
            subject,
            preheader,
            body,
            self._markdown.render(body),
            idempotency_key=idempotency_key,
            now=now,
            variables={
                "subject": subject,
                "preheader": preheader,
                "firstName": variables["first_name"],
            },
        )

    def check_message(self, slug: str, extra: dict[str, Any]) -> None:
        """Render a content file for a sample lead, so mistakes show before a send.

        Raises:
            ConfigurationError: The file is missing or broken.
        """
        sample = Lead(0, "lead@example.com", SAMPLE_FIRST_NAME, None)
        self.template(slug).render({**self.common_variables(sample), **extra})

    def common_variables(self, lead: Lead) -> dict[str, Any]:
        """The variables every content file can use."""
        return {
            "first_name": lead.first_name or NO_FIRST_NAME,
            "brand": self.campaign.brand,
            "sender": self.campaign.sender.model_dump(),
            "offer": self.campaign.offer.model_dump(),
        }

    def _wrap(
        self,
        lead: Lead,
        subject: str,
        preheader: str,
        body: str,
        body_html: str,
        *,
        idempotency_key: str,
        now: datetime,
        variables: dict[str, str | int],
    ) -> OutgoingEmail:
        """Put a rendered body in the layout, with the footer every email has."""
        unsubscribe_url = self.unsubscribe_url(lead)
        sender = self.campaign.sender
        footer = {
            "brand": escape(self.campaign.brand),
            "unsubscribe_url": escape(unsubscribe_url),
            "postal_address": escape(sender.postal_address),
        }
        html = HTML_LAYOUT.format(
            subject=escape(subject),
            preheader=escape(preheader),
            body=body_html,
            **footer,
        )
        text = body + TEXT_FOOTER.format(
            brand=self.campaign.brand,
            unsubscribe_url=unsubscribe_url,
            postal_address=sender.postal_address,
        )
        domain = sender.email.rpartition("@")[2]
        return OutgoingEmail(
            to=lead.email,
            from_name=sender.name,
            from_address=sender.email,
            reply_to=sender.reply_to,
            subject=subject,
            html=html,
            text=text,
            idempotency_key=idempotency_key,
            message_id=f"<{idempotency_key}@{domain}>",
            unsubscribe_url=unsubscribe_url,
            date=now,
            variables=variables,
        )

    def rendered_step(self, sequence: Sequence, index: int) -> RenderedStep | None:
        """A step rendered once for all leads, or None if it must be per lead.

        Markdown is the slow part of building an email. The lead's first name
        is the only variable that differs between leads, so a step is rendered
        with a stand-in for the name, and the name is put in per lead. A step
        whose content branches on the name (the stand-in changes more than the
        name's own place) is rendered for each lead instead.
        """
        key = (index, sequence.steps[index].slug)
        if key not in self._rendered:
            sample = Lead(0, "lead@example.com", None, None)
            template = self.template(key[1])
            variables = self.variables(sample, sequence, index)
            outputs = [
                template.render({**variables, "first_name": slot})
                for slot in (NAME_SLOT, OTHER_NAME_SLOT)
            ]
            swapped = tuple(
                part.replace(NAME_SLOT, OTHER_NAME_SLOT) for part in outputs[0]
            )
            subject, preheader, body = outputs[0]
            self._rendered[key] = (
                RenderedStep(subject, preheader, body, self._markdown.render(body))
                if swapped == outputs[1]
                else None
            )
        return self._rendered[key]

    def confirm_url(self, lead: Lead, attempt: int) -> str:
        """The link that confirms a lead's sign-up (double opt-in)."""
        token = sign_confirmation(lead, attempt, self.link_secret)
        return f"{self.public_url}/confirm/{token}"

    def unsubscribe_url(self, lead: Lead) -> str:
        """The lead's one-click unsubscribe link."""
        return f"{self.public_url}/unsubscribe/{sign_lead(lead, self.link_secret)}"


def sign_confirmation(lead: Lead, attempt: int, secret: str) -> str:
    """Return the token of a lead's confirmation link for one sign-up attempt."""
    message = f"confirm:{lead.id}:{attempt}:{lead.email}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_LENGTH]
    return f"{lead.id}.{attempt}.{signature}"


def sign_lead(lead: Lead, secret: str) -> str:
    """Return a token naming a lead that only the holder of ``secret`` can make."""
    digest = hmac.new(
        secret.encode(), f"{lead.id}:{lead.email}".encode(), hashlib.sha256
    ).digest()
    signature = base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_LENGTH]
    return f"{lead.id}.{signature}"


def token_matches(token: str, lead: Lead, secret: str) -> bool:
    """Tell, in constant time, whether ``token`` was signed for ``lead``."""
    return hmac.compare_digest(token, sign_lead(lead, secret))
