"""One typed Settings object, each field declared once with its ``EMBAN_*`` variable.

Every field is a :func:`setting`: its default, the environment variable that sets it, the parser
that reads that variable, and a one-line description. :meth:`Settings.from_env` reads the fields
from that metadata, and the settings table in ``docs/operations.md`` is printed from it
(``emban settings-doc``; a test fails when the file and the fields drift apart).

Bad settings raise :class:`SettingsError` with one line that names the variable; the CLI prints
that line and exits instead of showing a traceback. An empty variable counts as unset.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

PLANS = ("free", "starter", "pro", "enterprise")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DECODE_POLICIES = ("idle", "nice")
LOG_FORMATS = ("text", "json")
PADDLE_ENVIRONMENTS = ("sandbox", "production")
PADDLE_API_URLS = {
    "sandbox": "https://sandbox-api.paddle.com",
    "production": "https://api.paddle.com",
}
# Paddle's own names (the spec's): the one group of settings without the EMBAN_ prefix.
PADDLE_REQUIRED = (
    "PADDLE_NOTIFICATION_KEY",
    "PADDLE_API_KEY",
    "PADDLE_CLIENT_TOKEN",
    "PADDLE_PRICE_IDS",
)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

T = TypeVar("T")
# Reads one variable's (non-empty) text; raises SettingsError naming the variable.
Parser = Callable[[str, str], Any]


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


def _text(name: str, raw: str) -> str:
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(raw)


def _whole(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number (got {raw!r})") from None


def _positive_int(name: str, raw: str) -> int:
    value = _whole(name, raw)
    if value <= 0:
        raise SettingsError(f"{name} must be positive (got {value})")
    return value


def _non_negative_int(name: str, raw: str) -> int:
    value = _whole(name, raw)
    if value < 0:
        raise SettingsError(f"{name} must be zero or positive (got {value})")
    return value


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false (got {raw!r})")


def _networks(name: str, raw: str) -> tuple[IPNetwork, ...]:
    """A comma-separated list of addresses or CIDR blocks (``10.0.0.0/8, 192.168.1.7``)."""
    networks: list[IPNetwork] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise SettingsError(
                f"{name} must list IP addresses or CIDR blocks (got {part.strip()!r})"
            ) from None
    return tuple(networks)


def _database_url(name: str, raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme not in ("postgres", "postgresql", "sqlite"):
        raise SettingsError(
            f"{name} must start with postgres:// or sqlite:// (got {scheme or 'no scheme'}://)"
        )
    if scheme == "postgresql":
        return "postgres" + raw[len("postgresql") :]
    return raw


def _clickhouse_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} must look like http://user:pass@host:8123/db")
    return raw


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _cluster_name(name: str, raw: str) -> str:
    """A ClickHouse cluster name as ``remote_servers`` declares it; it is printed into DDL
    (``ON CLUSTER <name>``, ``Distributed(<name>, …)``), so only a plain identifier passes."""
    if _IDENTIFIER.fullmatch(raw) is None:
        raise SettingsError(
            f"{name} must be a plain identifier such as emban_cluster (got {raw!r})"
        )
    return raw


def _redis_url(name: str, raw: str) -> str:
    if urlsplit(raw).scheme not in ("redis", "rediss"):
        raise SettingsError(f"{name} must start with redis:// or rediss://")
    return raw


def _public_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL such as https://x.io")
    return raw


def _plan(name: str, raw: str) -> str:
    if raw not in PLANS:
        raise SettingsError(f"{name} must be one of {', '.join(PLANS)} (got {raw})")
    return raw


def _secret_key(name: str, raw: str) -> str:
    if len(raw) < 32:
        raise SettingsError(f"{name} must be at least 32 characters")
    return raw


def _log_level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise SettingsError(f"{name} must be DEBUG, INFO, WARNING or ERROR (got {level})")
    return level


def _log_format(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in LOG_FORMATS:
        raise SettingsError(f"{name} must be text or json (got {raw!r})")
    return value


def _decode_policy(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in DECODE_POLICIES:
        raise SettingsError(f"{name} must be idle or nice (got {raw!r})")
    return value


def _metrics_token(name: str, raw: str) -> str:
    if len(raw) < 16:
        raise SettingsError(f"{name} must be at least 16 characters")
    return raw


def _port(name: str, raw: str) -> int:
    value = _positive_int(name, raw)
    if value > 65535:
        raise SettingsError(f"{name} must be a TCP port, 1 to 65535 (got {value})")
    return value


def _number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number (got {raw!r})") from None


def _positive_float(name: str, raw: str) -> float:
    value = _number(name, raw)
    if not 0 < value < float("inf"):
        raise SettingsError(f"{name} must be positive (got {raw})")
    return value


def _non_negative_float(name: str, raw: str) -> float:
    value = _number(name, raw)
    if not 0 <= value < float("inf"):
        raise SettingsError(f"{name} must be zero or positive (got {raw})")
    return value


def _host_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _paddle_environment(name: str, raw: str) -> str:
    if raw not in PADDLE_ENVIRONMENTS:
        raise SettingsError(f"{name} must be sandbox or production (got {raw})")
    return raw


def _price_ids(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    """``starter=pri_…,pro=pri_…``: (plan, Paddle price id) pairs, each plan a paid one."""
    pairs: list[tuple[str, str]] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        plan, sep, price = (text.strip() for text in part.partition("="))
        if not sep or plan not in PLANS[1:] or not price:
            raise SettingsError(
                f"{name} must look like starter=pri_...,pro=pri_...,enterprise=pri_... "
                f"(got {part.strip()!r})"
            )
        pairs.append((plan, price))
    prices = [price for _, price in pairs]
    if len(set(prices)) != len(prices) or len({plan for plan, _ in pairs}) != len(pairs):
        raise SettingsError(f"{name} names a plan or a price twice")
    return tuple(pairs)


def _smtp_url(name: str, raw: str) -> str:
    from emban.notify.email import BadSmtpUrl, SmtpConfig

    try:
        SmtpConfig.parse(raw)
    except BadSmtpUrl as exc:
        raise SettingsError(str(exc)) from None
    return raw


@dataclass(frozen=True)
class SettingInfo:
    """How one field is set: its variable, the parser of that variable, what it is for."""

    env: str
    parse: Parser
    doc: str
    shown_default: str | None = None  # the default as the docs print it, when not the value


def setting(default: T, env: str, doc: str, parse: Parser, shown: str | None = None) -> T:
    """A :class:`Settings` field: ``default`` unless the variable ``env`` is set (non-empty)."""
    info = SettingInfo(env=env, parse=parse, doc=doc, shown_default=shown)
    return dataclasses.field(default=default, metadata={"setting": info})


DAY = 24 * 3600


@dataclass(frozen=True)
class Settings:
    # setting() returns a dataclasses.field(), so the default is per field, not a shared call.
    data_dir: Path = setting(  # noqa: RUF009
        Path(".emban"),
        "EMBAN_DATA_DIR",
        "embedded mode's directory: SQLite metadata, chDB events, the generated secret key",
        _path,
        shown=".emban",
    )
    database_url: str | None = setting(
        None,
        "EMBAN_DATABASE_URL",
        "metadata database, postgres://… (production) or sqlite://…; unset: embedded SQLite",
        _database_url,
    )
    clickhouse_url: str | None = setting(
        None,
        "EMBAN_CLICKHOUSE_URL",
        "ClickHouse server over HTTP, http://user:pass@host:8123/db; unset: embedded chDB",
        _clickhouse_url,
    )
    clickhouse_cluster: str | None = setting(
        None,
        "EMBAN_CLICKHOUSE_CLUSTER",
        "ClickHouse cluster (remote_servers name): ON CLUSTER DDL, Replicated + Distributed tables",
        _cluster_name,
    )
    redis_url: str | None = setting(
        None,
        "EMBAN_REDIS_URL",
        "redis://… for jobs (emban worker), shared limits, the live bus; unset: in-process",
        _redis_url,
    )
    secret_key: str = setting(
        "",
        "EMBAN_SECRET_KEY",
        "signs sessions and embed tokens, at least 32 characters; required with a database URL",
        _secret_key,
        shown="generated into the data dir",
    )
    public_url: str | None = setting(
        None,
        "EMBAN_PUBLIC_URL",
        "the URL browsers use, the base of embed and invite links; unset: the listen address",
        _public_url,
    )
    default_plan: str = setting(
        "free", "EMBAN_DEFAULT_PLAN", f"plan of a new org: {', '.join(PLANS)}", _plan
    )
    cookie_secure: bool = setting(
        False, "EMBAN_COOKIE_SECURE", "session cookies only over HTTPS (true behind TLS)", _bool
    )
    host: str = setting(
        "127.0.0.1", "EMBAN_HOST", "address `emban serve` listens on (`--host` wins)", _text
    )
    port: int = setting(
        8000, "EMBAN_PORT", "port `emban serve` listens on (`--port` wins)", _positive_int
    )
    session_ttl_seconds: int = setting(
        14 * DAY, "EMBAN_SESSION_TTL_SECONDS", "console session lifetime", _positive_int
    )
    invite_ttl_seconds: int = setting(
        7 * DAY, "EMBAN_INVITE_TTL_SECONDS", "how long an invite can be accepted", _positive_int
    )
    # Login: attempts per window for one email from one source address, and per source address.
    login_max_per_email: int = setting(
        10,
        "EMBAN_LOGIN_MAX_PER_EMAIL",
        "login attempts per window for one email from one source address",
        _positive_int,
    )
    login_max_per_ip: int = setting(
        50, "EMBAN_LOGIN_MAX_PER_IP", "login attempts per window per source address", _positive_int
    )
    login_window_seconds: int = setting(
        900, "EMBAN_LOGIN_WINDOW_SECONDS", "the login limits' window", _positive_int
    )
    # Registration and invite acceptance (each hashes a password): attempts per source address.
    register_max_per_ip: int = setting(
        10, "EMBAN_REGISTER_MAX_PER_IP", "sign-ups per window per source address", _positive_int
    )
    accept_invite_max_per_ip: int = setting(
        20,
        "EMBAN_ACCEPT_INVITE_MAX_PER_IP",
        "invite acceptances per window per source address",
        _positive_int,
    )
    signup_window_seconds: int = setting(
        3600,
        "EMBAN_SIGNUP_WINDOW_SECONDS",
        "the sign-up and invite-acceptance limits' window",
        _positive_int,
    )
    # A refusal by one of the attempt limits above is answered this late (auth/tarpit.py).
    auth_refusal_delay: float = setting(
        1.0,
        "EMBAN_AUTH_REFUSAL_DELAY",
        "seconds a 429 of the login, sign-up and invite limits waits before it is sent "
        "(at most its Retry-After; 0: at once)",
        _non_negative_float,
    )
    # Request budgets (token buckets): per embed session (jti) and per admin API key.
    embed_rate_per_second: int = setting(
        20,
        "EMBAN_EMBED_RATE_PER_SECOND",
        "requests per second per embed session (token bucket refill)",
        _positive_int,
    )
    embed_rate_burst: int = setting(
        60, "EMBAN_EMBED_RATE_BURST", "burst per embed session (bucket size)", _positive_int
    )
    api_key_rate_per_second: int = setting(
        100,
        "EMBAN_API_KEY_RATE_PER_SECOND",
        "requests per second per admin API key (token bucket refill)",
        _positive_int,
    )
    api_key_rate_burst: int = setting(
        300, "EMBAN_API_KEY_RATE_BURST", "burst per admin API key (bucket size)", _positive_int
    )
    api_key_cache_ttl: float = setting(
        60.0,
        "EMBAN_API_KEY_CACHE_TTL",
        "seconds a verified API key is trusted from the process cache; deletions reach every "
        "process through the live bus at once, this bounds a process that missed the message",
        _positive_float,
    )
    # Peers whose X-Forwarded-For is believed (a load balancer); empty: the socket address.
    trusted_proxies: tuple[IPNetwork, ...] = setting(
        (),
        "EMBAN_TRUSTED_PROXIES",
        "comma-separated addresses/CIDR blocks whose X-Forwarded-For is believed",
        _networks,
        shown="none",
    )
    log_level: str = setting("INFO", "EMBAN_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", _log_level)
    log_format: str = setting(
        "text",
        "EMBAN_LOG_FORMAT",
        "text, or json: one JSON object per line with ts, level, logger, message, request_id",
        _log_format,
    )
    # Observability (docs/operations.md, "Metrics and logs").
    metrics_token: str | None = setting(
        None,
        "EMBAN_METRICS_TOKEN",
        "GET /metrics requires Authorization: Bearer <this>; unset: loopback clients only",
        _metrics_token,
    )
    worker_metrics_port: int | None = setting(
        None,
        "EMBAN_WORKER_METRICS_PORT",
        "port where `emban worker` serves GET /metrics (on EMBAN_HOST); unset: not served",
        _port,
    )
    shutdown_timeout: float = setting(
        10.0,
        "EMBAN_SHUTDOWN_TIMEOUT",
        "seconds from SIGTERM to exit: requests in flight get 80 %, then the ingest queue's "
        "last flush; past it the process exits anyway (status 1)",
        _positive_float,
    )
    gil_switch_interval_us: int = setting(
        500,
        "EMBAN_GIL_SWITCH_INTERVAL_US",
        "`emban serve`: microseconds a thread waits for Python's GIL before asking its holder to "
        "let go (Python's own default: 5000)",
        _positive_int,
    )
    # Live embeds (graphql-transport-ws): bounded work per token, socket and (dashboard, tenant).
    live_max_sockets_per_token: int = setting(
        5, "EMBAN_LIVE_MAX_SOCKETS_PER_TOKEN", "live sockets one embed token holds", _positive_int
    )
    live_max_subscriptions_per_socket: int = setting(
        20,
        "EMBAN_LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET",
        "subscriptions on one live socket",
        _positive_int,
    )
    live_max_socket_buffer_bytes: int = setting(
        256 * 1024,
        "EMBAN_LIVE_MAX_SOCKET_BUFFER_BYTES",
        "pushes one live socket may leave unsent before it is closed (1013 viewer_too_slow)",
        _positive_int,
    )
    live_max_cohorts_per_dashboard_tenant: int = setting(
        50,
        "EMBAN_LIVE_MAX_COHORTS_PER_DASHBOARD_TENANT",
        "live cohorts per (dashboard, tenant) in one process",
        _positive_int,
    )
    live_max_concurrent_refreshes: int = setting(
        2,
        "EMBAN_LIVE_MAX_CONCURRENT_REFRESHES",
        "live widget computations (batches of cohorts) one process runs at once",
        _positive_int,
    )
    live_min_refresh_interval_ms: int = setting(
        1000,
        "EMBAN_LIVE_MIN_REFRESH_INTERVAL_MS",
        "shortest time between two refreshes of the cohorts of one dashboard and tenant",
        _positive_int,
    )
    ingest_backlog_bytes: int = setting(
        256 * 1024 * 1024,
        "EMBAN_INGEST_BACKLOG_BYTES",
        "ingest WAL bytes acknowledged but not yet in ClickHouse before POST /v1/events answers"
        " 503 ingest_backlog",
        _positive_int,
        shown="268435456 (256 MiB)",
    )
    ingest_decode_workers: int = setting(
        1,
        "EMBAN_INGEST_DECODE_WORKERS",
        "processes (at a low CPU priority) that decode and validate POST /v1/events bodies over"
        " 64 KiB, so a burst does not hold the event loop's GIL; 0: threads of the server",
        _non_negative_int,
    )
    ingest_decode_policy: str = setting(
        "idle",
        "EMBAN_INGEST_DECODE_POLICY",
        "how the OS schedules those processes: idle (Linux SCHED_IDLE: only on a core no other "
        "thread wants) or nice (nice 10: a smaller share of a busy core)",
        _decode_policy,
    )
    # Points one analytics answer may hold (buckets x groups, zero-filled ones included).
    query_max_points: int = setting(
        100_000,
        "EMBAN_QUERY_MAX_POINTS",
        "points one analytics answer may hold (zero-filled buckets included)",
        _positive_int,
    )
    adhoc_max_concurrent_per_org: int = setting(
        2,
        "EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG",
        "ad-hoc SQL queries one org runs at once (per process)",
        _positive_int,
    )
    discovery_window_days: int = setting(
        30,
        "EMBAN_DISCOVERY_WINDOW_DAYS",
        "discovery and auto-create read only the events of this many last days",
        _positive_int,
    )
    discovery_sample_rows: int = setting(
        100_000,
        "EMBAN_DISCOVERY_SAMPLE_ROWS",
        "property statistics read about this many most recent events of the window (whole hours)",
        _positive_int,
    )
    discovery_cache_seconds: int = setting(
        30,
        "EMBAN_DISCOVERY_CACHE_SECONDS",
        "a discovery scan is reused this long unless the environment's events change in this "
        "process (0: off)",
        _non_negative_int,
    )
    adhoc_max_result_bytes: int = setting(
        16 * 1024 * 1024,
        "EMBAN_ADHOC_MAX_RESULT_BYTES",
        "largest ad-hoc SQL answer in bytes",
        _positive_int,
        shown="16777216 (16 MiB)",
    )
    # Alerts, reports and webhooks (docs/alerts-reports.md).
    alert_interval_seconds: int = setting(
        60, "EMBAN_ALERT_INTERVAL_SECONDS", "seconds between two alert cycles", _positive_int
    )
    smtp_url: str | None = setting(
        None,
        "EMBAN_SMTP_URL",
        "outgoing mail: smtp://user:pass@host:port, smtps://..., ?starttls=true",
        _smtp_url,
    )
    email_from: str = setting(
        "emban@localhost", "EMBAN_EMAIL_FROM", "sender address of alert and report mail", _text
    )
    webhook_allow_hosts: tuple[str, ...] = setting(
        (),
        "EMBAN_WEBHOOK_ALLOW_HOSTS",
        "hosts or addresses exempt from the webhook SSRF guard (development, tests)",
        _host_list,
        shown="(none)",
    )
    webhook_retry_base_seconds: float = setting(
        10.0,
        "EMBAN_WEBHOOK_RETRY_BASE_SECONDS",
        "first webhook retry delay, doubled at each attempt",
        _positive_float,
    )
    chromium_path: str = setting(
        "/usr/bin/chromium", "EMBAN_CHROMIUM_PATH", "Chromium for PDF report exports", _text
    )
    render_url: str | None = setting(
        None,
        "EMBAN_RENDER_URL",
        "where Chromium reaches this service for PDF exports (default: the public URL)",
        _public_url,
    )
    # Paddle billing (docs/billing.md): all four secrets or none.
    paddle_notification_key: str | None = setting(
        None,
        "PADDLE_NOTIFICATION_KEY",
        "secret of the Paddle notification destination (verifies POST /webhooks/paddle)",
        _text,
    )
    paddle_api_key: str | None = setting(
        None, "PADDLE_API_KEY", "Paddle API key (customer portal sessions)", _text
    )
    paddle_client_token: str | None = setting(
        None, "PADDLE_CLIENT_TOKEN", "Paddle.js client-side token (checkout)", _text
    )
    paddle_environment: str = setting(
        "sandbox", "PADDLE_ENVIRONMENT", "sandbox or production", _paddle_environment
    )
    paddle_api_url: str | None = setting(
        None,
        "PADDLE_API_URL",
        "Paddle API base URL",
        _public_url,
        shown="per environment: https://sandbox-api.paddle.com or https://api.paddle.com",
    )
    paddle_price_ids: tuple[tuple[str, str], ...] = setting(
        (),
        "PADDLE_PRICE_IDS",
        "plan=price id pairs: starter=pri_...,pro=pri_...,enterprise=pri_...",
        _price_ids,
        shown="(none)",
    )

    @property
    def billing_configured(self) -> bool:
        """True when every Paddle secret is set (:meth:`from_env` refuses a partial set)."""
        return not self.missing_billing_settings()

    def missing_billing_settings(self) -> list[str]:
        """The Paddle variables left unset: all four when billing is off, none when it is on."""
        values = {
            "PADDLE_NOTIFICATION_KEY": self.paddle_notification_key,
            "PADDLE_API_KEY": self.paddle_api_key,
            "PADDLE_CLIENT_TOKEN": self.paddle_client_token,
            "PADDLE_PRICE_IDS": self.paddle_price_ids,
        }
        return [name for name in PADDLE_REQUIRED if not values[name]]

    @property
    def paddle_base_url(self) -> str:
        return (self.paddle_api_url or PADDLE_API_URLS[self.paddle_environment]).rstrip("/")

    @property
    def embedded(self) -> bool:
        """True when metadata lives in the SQLite file of the data dir (no database URL)."""
        return self.database_url is None

    @property
    def metadata_db_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite://{(self.data_dir / 'metadata.sqlite3').resolve()}"

    @property
    def chdb_path(self) -> Path:
        return (self.data_dir / "clickhouse").resolve()

    @property
    def base_url(self) -> str:
        """The base for links the service hands out (embed URLs, invite links)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def with_listen(self, host: str, port: int) -> Settings:
        return replace(self, host=host, port=port)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate settings; embedded mode keeps a generated secret in the data dir."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            info = setting_info(item)
            raw = env.get(info.env)
            if raw:
                values[item.name] = info.parse(info.env, raw)
        settings = cls(**values)
        missing = settings.missing_billing_settings()
        if 0 < len(missing) < len(PADDLE_REQUIRED):
            raise SettingsError(
                f"{missing[0]} is required when Paddle billing is configured"
                f" (missing: {', '.join(missing)})"
            )
        if settings.clickhouse_cluster is not None and settings.clickhouse_url is None:
            raise SettingsError(
                "EMBAN_CLICKHOUSE_CLUSTER needs EMBAN_CLICKHOUSE_URL (chDB has no cluster)"
            )
        if not settings.secret_key:
            if settings.database_url is not None:
                raise SettingsError("EMBAN_SECRET_KEY is required when EMBAN_DATABASE_URL is set")
            settings = replace(settings, secret_key=_embedded_secret(settings.data_dir))
        return settings


def setting_info(item: dataclasses.Field[Any]) -> SettingInfo:
    info = item.metadata["setting"]
    assert isinstance(info, SettingInfo)
    return info


DOC_BEGIN = "<!-- settings table: generated by `emban settings-doc --write`, do not edit -->"
DOC_END = "<!-- end of settings table -->"


def with_settings_table(document: str) -> str:
    """``document`` with the text between the settings-table markers replaced by the table."""
    begin, end = document.find(DOC_BEGIN), document.find(DOC_END)
    if begin < 0 or end < begin:
        raise ValueError(f"the document has no {DOC_BEGIN!r} … {DOC_END!r} block")
    return f"{document[: begin + len(DOC_BEGIN)]}\n{settings_table()}{document[end:]}"


def settings_table() -> str:
    """The Markdown table of every setting, as ``docs/operations.md`` carries it."""
    lines = ["| variable | default | what it sets |", "|---|---|---|"]
    for item in dataclasses.fields(Settings):
        info = setting_info(item)
        if info.shown_default is not None:
            default = info.shown_default
        elif item.default is None:
            default = "unset"
        elif isinstance(item.default, bool):
            default = str(item.default).lower()
        else:
            default = str(item.default)
        lines.append(f"| `{info.env}` | {default} | {info.doc} |")
    return "\n".join(lines) + "\n"


def _embedded_secret(data_dir: Path) -> str:
    """Generate the embedded secret once and keep it in the data dir (mode 0600)."""
    path = data_dir / "secret_key"
    try:
        if path.exists():
            value = path.read_text().strip()
            if len(value) >= 32:
                return value
        data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value
    except OSError as exc:
        raise SettingsError(f"EMBAN_DATA_DIR {data_dir} is not writable: {exc.strerror}") from None
