"""Environments, and which origins may frame their embeds (``allowed_origins``).

An environment's ``allowed_origins`` is either ``["*"]`` (any site may frame its embeds: the
default, so embedding works out of the box) or a list of exact origins ``scheme://host[:port]``.
It decides two things in the browser:

- the embed page's CSP ``frame-ancestors`` (:func:`framing_origins`): the browser itself refuses
  to show the page inside any other site;
- where the runtime posts its events and whose commands it accepts (the page hands the list to the
  runtime; see ``static/embed/src/bridge.ts``).

An empty list is allowed and means "no site may frame this environment" (``frame-ancestors
'none'``): a way to switch embedding off without rotating the secret.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from emban.auth.embed_tokens import signed_environment
from emban.auth.principal import Principal
from emban.error_codes import OrgErrorCode
from emban.errors import BadRequest, NotFound
from emban.models import Environment
from emban.services import audit
from emban.services.access import requires
from emban.services.scope import in_org
from emban.services.validation import lookupable

ANY_ORIGIN = "*"
MAX_ORIGINS = 50
MAX_ORIGIN_LENGTH = 300
FIELD = "allowed_origins"

_DEFAULT_PORTS = {"http": 80, "https": 443}
# scheme "://" authority, then whatever follows (which must be nothing, or a lone "/").
_ORIGIN = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)$")
_AUTHORITY = re.compile(r"^(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[^:]*))?$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _refuse(index: int, value: str, reason: str) -> BadRequest:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return BadRequest(f"allowed_origins[{index}] {shown!r}: {reason}", field=FIELD)


def _host(raw: str) -> str | None:
    """The host in its canonical form (lowercase; IPv6 compressed in brackets), or None."""
    host = raw.lower()
    if host.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    if not host or len(host) > 253 or not host.isascii():
        return None
    labels = host.split(".")
    return host if all(_LABEL.match(label) for label in labels) else None


def clean_origin(value: str, index: int = 0) -> str:
    """One origin, normalized as a browser serializes it: ``https://app.example.com`` (lowercase,
    no default port, no trailing slash). Anything else is a 400 naming ``allowed_origins``."""
    text = value.strip()
    if len(text) > MAX_ORIGIN_LENGTH:
        raise _refuse(index, text, f"an origin has at most {MAX_ORIGIN_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise _refuse(index, text, "an origin has no spaces or control characters")
    if text == ANY_ORIGIN:
        raise _refuse(index, text, '"*" must be the only entry (it allows every origin)')
    if "*" in text:
        raise _refuse(
            index, text, 'wildcards are not allowed inside an origin (use "*" alone for any)'
        )
    parsed = _ORIGIN.match(text)
    if parsed is None:
        raise _refuse(index, text, "expected an origin scheme://host[:port]")
    scheme = parsed["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        raise _refuse(index, text, "the scheme must be http or https")
    if parsed["rest"] not in ("", "/"):
        raise _refuse(index, text, "an origin has no path, query or fragment")
    authority = parsed["authority"]
    if "@" in authority:
        raise _refuse(index, text, "an origin has no user name or password")
    parts = _AUTHORITY.match(authority)
    host = _host(parts["host"]) if parts else None
    if parts is None or host is None:
        raise _refuse(index, text, "the host must be a DNS name (punycode for IDNs) or an IP")
    port = parts["port"]
    if port is None:
        return f"{scheme}://{host}"
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise _refuse(index, text, "the port must be a number from 1 to 65535")
    if int(port) == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


def clean_allowed_origins(value: Any) -> list[str]:
    """``["*"]``, or up to :data:`MAX_ORIGINS` distinct origins (normalized, order kept)."""
    if not isinstance(value, list):
        raise BadRequest("allowed_origins must be a list of origins", field=FIELD)
    if len(value) > MAX_ORIGINS:
        raise BadRequest(f"allowed_origins has at most {MAX_ORIGINS} entries", field=FIELD)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise BadRequest(f"allowed_origins[{index}] must be a string", field=FIELD)
    if [item.strip() for item in value] == [ANY_ORIGIN]:
        return [ANY_ORIGIN]
    return list(dict.fromkeys(clean_origin(item, index) for index, item in enumerate(value)))


@requires("viewer")
async def list_environments(*, actor: Principal) -> list[Environment]:
    """The org's environments, oldest first (any console member, admin keys)."""
    return await in_org(Environment, actor).order_by("created_at", "id")


@requires("admin")
async def update_environment(
    *, actor: Principal, environment_id: str, allowed_origins: Any
) -> Environment:
    """Set who may frame the environment's embeds (admin); audited when it changes."""
    environment = (
        await in_org(Environment, actor).get_or_none(id=environment_id)
        if lookupable(environment_id)
        else None
    )
    if environment is None:
        raise NotFound("environment not found", code=OrgErrorCode.environment_not_found)
    cleaned = clean_allowed_origins(allowed_origins)
    previous = list(environment.allowed_origins)
    if cleaned != previous:
        await audit.save_changes(
            actor,
            environment,
            {"allowed_origins": cleaned},
            "environment.update",
            {"name": environment.name, "allowed_origins": cleaned, "previous": previous},
        )
    return environment


def _stored(origins: Any) -> list[str]:
    """A stored list as the CSP may print it: every entry re-checked, since a header is built
    from them (a hand-edited row must not inject directives)."""
    if not isinstance(origins, list):
        return []
    if origins == [ANY_ORIGIN]:
        return [ANY_ORIGIN]
    kept: list[str] = []
    for index, origin in enumerate(origins):
        try:
            if isinstance(origin, str) and clean_origin(origin, index) == origin:
                kept.append(origin)
        except BadRequest:
            continue
    return kept


async def framing_origins(token: str | None) -> list[str]:
    """The origins that may frame an embed page opened with ``token``.

    The token's signature is verified (the environment is the one whose secret signed it), but not
    its expiry: an expired session must still render its "expired" message in the customer's page.
    No token, or one no environment signed: nobody (``[]``): no origin is known to be allowed.
    """
    if not token:
        return []
    environment = await signed_environment(token)
    return [] if environment is None else _stored(environment.allowed_origins)
