"""E-mail through aiosmtplib: ``EMBAN_SMTP_URL`` and ``EMBAN_EMAIL_FROM``.

``smtp://user:pass@host:port`` (plain, or ``?starttls=true`` to upgrade), ``smtps://…`` (implicit
TLS, port 465 by default). Every message has a text part and an HTML part; every name that came
from a user (dashboard, rule, widget titles) is escaped in the HTML. Exports are attachments.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

SMTP_TIMEOUT_SECONDS = 30.0
_TRUE = {"1", "true", "yes", "on"}


class BadSmtpUrl(ValueError):
    """The message names EMBAN_SMTP_URL and what is wrong."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool  # implicit TLS (smtps)
    start_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise BadSmtpUrl("EMBAN_SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise BadSmtpUrl("EMBAN_SMTP_URL has no host")
        try:
            port = parts.port
        except ValueError as exc:
            raise BadSmtpUrl("EMBAN_SMTP_URL has an invalid port") from exc
        query = parse_qs(parts.query)
        start_tls = query.get("starttls", ["false"])[-1].lower() in _TRUE
        implicit = parts.scheme == "smtps"
        if implicit and start_tls:
            raise BadSmtpUrl("EMBAN_SMTP_URL: smtps:// already uses TLS; drop ?starttls")
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit else 587 if start_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=start_tls,
        )


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime: str  # "text/csv", "application/pdf"


def build_message(
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html_body: str,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """``html_body`` is trusted markup built with :func:`escape` around every user value."""
    message = EmailMessage()
    message["From"] = sender if "<" in sender else formataddr(("Emban", sender))
    message["To"] = ", ".join(to)
    # Header injection: user text in a subject never carries a line break.
    message["Subject"] = " ".join(subject.split())[:200]
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip(">") or None)
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    for item in attachments:
        maintype, _, subtype = item.mime.partition("/")
        message.add_attachment(
            item.content, maintype=maintype, subtype=subtype, filename=item.filename
        )
    return message


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


async def send(config: SmtpConfig, message: EmailMessage) -> None:
    """Raises ``aiosmtplib.SMTPException`` / ``OSError`` / ``TimeoutError`` on failure."""
    await aiosmtplib.send(
        message,
        hostname=config.host,
        port=config.port,
        username=config.username,
        password=config.password,
        use_tls=config.use_tls,
        start_tls=config.start_tls,
        timeout=SMTP_TIMEOUT_SECONDS,
    )
