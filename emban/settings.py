"""One typed Settings object, read from ``EMBAN_*`` environment variables.

Bad settings raise :class:`SettingsError` with one line that names the variable; the CLI prints
that line and exits instead of showing a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

PLANS = ("free", "starter", "pro", "enterprise")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".emban")
    database_url: str | None = None
    clickhouse_url: str | None = None
    redis_url: str | None = None
    secret_key: str = ""
    public_url: str | None = None
    default_plan: str = "free"
    cookie_secure: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    session_ttl_seconds: int = 14 * 24 * 3600
    invite_ttl_seconds: int = 7 * 24 * 3600
    # Login: attempts per window for one email from one source address, and per source address.
    login_max_per_email: int = 10
    login_max_per_ip: int = 50
    login_window_seconds: int = 900
    # Registration and invite acceptance (each hashes a password): attempts per source address.
    register_max_per_ip: int = 10
    accept_invite_max_per_ip: int = 20
    signup_window_seconds: int = 3600
    # Request budgets (token buckets): per embed session (jti) and per admin API key.
    embed_rate_per_second: int = 20
    embed_rate_burst: int = 60
    api_key_rate_per_second: int = 100
    api_key_rate_burst: int = 300
    # Peers whose X-Forwarded-For is believed (a load balancer); empty: the socket address.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    log_level: str = "INFO"
    # Live embeds (graphql-transport-ws): bounded work per token, socket and (dashboard, tenant).
    live_max_sockets_per_token: int = 5
    live_max_subscriptions_per_socket: int = 20
    live_max_cohorts_per_dashboard_tenant: int = 50
    live_max_concurrent_refreshes: int = 2
    live_min_refresh_interval_ms: int = 1000
    # Points one analytics answer may hold (buckets x groups, zero-filled ones included).
    query_max_points: int = 100_000
    adhoc_max_concurrent_per_org: int = 2
    adhoc_max_result_bytes: int = 16 * 1024 * 1024
    # Alerts, reports and webhooks (docs/alerts-reports.md).
    alert_interval_seconds: int = 60
    smtp_url: str | None = None
    email_from: str = "emban@localhost"
    webhook_allow_hosts: tuple[str, ...] = ()
    webhook_retry_base_seconds: float = 10.0
    chromium_path: str = "/usr/bin/chromium"
    # The base URL headless Chromium uses to reach this service for PDF exports (default: the
    # public URL, else the listen address).
    render_url: str | None = None

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
        data_dir = Path(env.get("EMBAN_DATA_DIR") or ".emban")
        database_url = env.get("EMBAN_DATABASE_URL") or None
        if database_url is not None:
            scheme = urlsplit(database_url).scheme
            if scheme not in ("postgres", "postgresql", "sqlite"):
                raise SettingsError(
                    "EMBAN_DATABASE_URL must start with postgres:// or sqlite:// "
                    f"(got {scheme or 'no scheme'}://)"
                )
            if scheme == "postgresql":
                database_url = "postgres" + database_url[len("postgresql") :]
        clickhouse_url = env.get("EMBAN_CLICKHOUSE_URL") or None
        if clickhouse_url is not None:
            parts = urlsplit(clickhouse_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SettingsError(
                    "EMBAN_CLICKHOUSE_URL must look like http://user:pass@host:8123/db"
                )
        redis_url = env.get("EMBAN_REDIS_URL") or None
        if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss"):
            raise SettingsError("EMBAN_REDIS_URL must start with redis:// or rediss://")
        public_url = env.get("EMBAN_PUBLIC_URL") or None
        if public_url is not None:
            parts = urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError("EMBAN_PUBLIC_URL must be an http(s) URL such as https://x.io")
        plan = env.get("EMBAN_DEFAULT_PLAN") or "free"
        if plan not in PLANS:
            raise SettingsError(
                f"EMBAN_DEFAULT_PLAN must be one of {', '.join(PLANS)} (got {plan})"
            )
        cookie_secure = _parse_bool("EMBAN_COOKIE_SECURE", env.get("EMBAN_COOKIE_SECURE"))
        secret_key = env.get("EMBAN_SECRET_KEY") or ""
        if not secret_key:
            if database_url is not None:
                raise SettingsError("EMBAN_SECRET_KEY is required when EMBAN_DATABASE_URL is set")
            secret_key = _embedded_secret(data_dir)
        elif len(secret_key) < 32:
            raise SettingsError("EMBAN_SECRET_KEY must be at least 32 characters")
        log_level = (env.get("EMBAN_LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(
                f"EMBAN_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got {log_level})"
            )
        return cls(
            log_level=log_level,
            data_dir=data_dir,
            database_url=database_url,
            clickhouse_url=clickhouse_url,
            redis_url=redis_url,
            secret_key=secret_key,
            public_url=public_url,
            default_plan=plan,
            cookie_secure=cookie_secure,
            login_max_per_email=_parse_int(env, "EMBAN_LOGIN_MAX_PER_EMAIL", 10),
            login_max_per_ip=_parse_int(env, "EMBAN_LOGIN_MAX_PER_IP", 50),
            register_max_per_ip=_parse_int(env, "EMBAN_REGISTER_MAX_PER_IP", 10),
            accept_invite_max_per_ip=_parse_int(env, "EMBAN_ACCEPT_INVITE_MAX_PER_IP", 20),
            embed_rate_per_second=_parse_int(env, "EMBAN_EMBED_RATE_PER_SECOND", 20),
            embed_rate_burst=_parse_int(env, "EMBAN_EMBED_RATE_BURST", 60),
            api_key_rate_per_second=_parse_int(env, "EMBAN_API_KEY_RATE_PER_SECOND", 100),
            api_key_rate_burst=_parse_int(env, "EMBAN_API_KEY_RATE_BURST", 300),
            trusted_proxies=_parse_networks(env, "EMBAN_TRUSTED_PROXIES"),
            session_ttl_seconds=_parse_int(env, "EMBAN_SESSION_TTL_SECONDS", 14 * 24 * 3600),
            live_max_sockets_per_token=_parse_int(env, "EMBAN_LIVE_MAX_SOCKETS_PER_TOKEN", 5),
            live_max_subscriptions_per_socket=_parse_int(
                env, "EMBAN_LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET", 20
            ),
            live_max_cohorts_per_dashboard_tenant=_parse_int(
                env, "EMBAN_LIVE_MAX_COHORTS_PER_DASHBOARD_TENANT", 50
            ),
            live_max_concurrent_refreshes=_parse_int(env, "EMBAN_LIVE_MAX_CONCURRENT_REFRESHES", 2),
            live_min_refresh_interval_ms=_parse_int(
                env, "EMBAN_LIVE_MIN_REFRESH_INTERVAL_MS", 1000
            ),
            query_max_points=_parse_int(env, "EMBAN_QUERY_MAX_POINTS", 100_000),
            adhoc_max_concurrent_per_org=_parse_int(env, "EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG", 2),
            adhoc_max_result_bytes=_parse_int(
                env, "EMBAN_ADHOC_MAX_RESULT_BYTES", 16 * 1024 * 1024
            ),
            alert_interval_seconds=_parse_int(env, "EMBAN_ALERT_INTERVAL_SECONDS", 60),
            smtp_url=_parse_smtp_url(env.get("EMBAN_SMTP_URL") or None),
            email_from=env.get("EMBAN_EMAIL_FROM") or "emban@localhost",
            webhook_allow_hosts=tuple(
                h.strip()
                for h in (env.get("EMBAN_WEBHOOK_ALLOW_HOSTS") or "").split(",")
                if h.strip()
            ),
            webhook_retry_base_seconds=_parse_float(env, "EMBAN_WEBHOOK_RETRY_BASE_SECONDS", 10.0),
            chromium_path=env.get("EMBAN_CHROMIUM_PATH") or "/usr/bin/chromium",
            render_url=env.get("EMBAN_RENDER_URL") or None,
        )


def _parse_bool(name: str, value: str | None) -> bool:
    if value is None or value == "":
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false (got {value!r})")


def _parse_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number (got {raw!r})") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive (got {value})")
    return value


def _parse_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number (got {raw!r})") from None
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name} must be positive (got {raw})")
    return value


def _parse_smtp_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    from emban.notify.email import BadSmtpUrl, SmtpConfig

    try:
        SmtpConfig.parse(raw)
    except BadSmtpUrl as exc:
        raise SettingsError(str(exc)) from None
    return raw


def _parse_networks(env: Mapping[str, str], name: str) -> tuple[IPNetwork, ...]:
    """A comma-separated list of addresses or CIDR blocks (``10.0.0.0/8, 192.168.1.7``)."""
    networks: list[IPNetwork] = []
    for part in (env.get(name) or "").split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise SettingsError(
                f"{name} must list IP addresses or CIDR blocks (got {part.strip()!r})"
            ) from None
    return tuple(networks)


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
