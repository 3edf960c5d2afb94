"""``Settings.from_env``: defaults, normalisation, and one clear line per bad variable."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from emban.cli import main
from emban.settings import (
    DOC_BEGIN,
    DOC_END,
    Settings,
    SettingsError,
    setting_info,
    settings_table,
    with_settings_table,
)

SECRET = "s" * 32
PG = "postgres://emban:pw@db.internal:5432/emban"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


def env_for(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"EMBAN_DATA_DIR": str(tmp_path / "data"), **values}


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    settings = Settings.from_env(env_for(tmp_path))
    data_dir = tmp_path / "data"
    assert settings.data_dir == data_dir
    assert settings.database_url is None
    assert settings.clickhouse_url is None
    assert settings.redis_url is None
    assert settings.public_url is None
    assert settings.embedded is True
    assert settings.default_plan == "free"
    assert settings.cookie_secure is False
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.session_ttl_seconds == 14 * 24 * 3600
    assert settings.invite_ttl_seconds == 7 * 24 * 3600
    assert (settings.login_max_per_email, settings.login_max_per_ip) == (10, 50)
    assert settings.login_window_seconds == 900
    assert (settings.register_max_per_ip, settings.accept_invite_max_per_ip) == (10, 20)
    assert settings.signup_window_seconds == 3600
    assert settings.auth_refusal_delay == 1.0
    assert (settings.embed_rate_per_second, settings.embed_rate_burst) == (20, 60)
    assert (settings.api_key_rate_per_second, settings.api_key_rate_burst) == (100, 300)
    assert settings.api_key_cache_ttl == 60.0
    assert settings.trusted_proxies == ()
    assert settings.adhoc_max_concurrent_per_org == 2
    assert (
        settings.live_max_sockets_per_token,
        settings.live_max_subscriptions_per_socket,
        settings.live_max_cohorts_per_dashboard_tenant,
        settings.live_max_concurrent_refreshes,
        settings.live_min_refresh_interval_ms,
    ) == (5, 20, 50, 2, 1000)
    assert settings.adhoc_max_result_bytes == 16 * 1024 * 1024
    assert settings.ingest_backlog_bytes == 256 * 1024 * 1024
    assert settings.metadata_db_url == f"sqlite://{data_dir.resolve()}/metadata.sqlite3"
    assert settings.chdb_path == (data_dir / "clickhouse").resolve()
    assert settings.base_url == "http://127.0.0.1:8000"


def test_empty_values_count_as_unset(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            EMBAN_DATABASE_URL="",
            EMBAN_CLICKHOUSE_URL="",
            EMBAN_REDIS_URL="",
            EMBAN_PUBLIC_URL="",
            EMBAN_DEFAULT_PLAN="",
            EMBAN_COOKIE_SECURE="",
            EMBAN_SECRET_KEY="",
            EMBAN_LOGIN_MAX_PER_EMAIL="",
        )
    )
    assert settings.embedded is True
    assert settings.default_plan == "free"
    assert settings.cookie_secure is False
    assert settings.login_max_per_email == 10
    assert len(settings.secret_key) == 64


def test_embedded_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = Settings.from_env(env_for(tmp_path))
    path = tmp_path / "data" / "secret_key"
    assert path.read_text() == first.secret_key
    assert len(first.secret_key) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = Settings.from_env(env_for(tmp_path))
    assert second.secret_key == first.secret_key
    # A given secret wins and leaves the file alone.
    given = Settings.from_env(env_for(tmp_path, EMBAN_SECRET_KEY=SECRET))
    assert given.secret_key == SECRET
    assert path.read_text() == first.secret_key


def test_a_too_short_secret_file_is_replaced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret_key").write_text("short\n")
    settings = Settings.from_env(env_for(tmp_path))
    assert len(settings.secret_key) == 64
    assert (data / "secret_key").read_text() == settings.secret_key


def test_postgresql_scheme_is_normalised(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            EMBAN_DATABASE_URL="postgresql://emban:pw@db.internal:5432/emban",
            EMBAN_SECRET_KEY=SECRET,
        )
    )
    assert settings.database_url == PG
    assert settings.metadata_db_url == PG
    assert settings.embedded is False
    assert not (tmp_path / "data" / "secret_key").exists()
    same = Settings.from_env(env_for(tmp_path, EMBAN_DATABASE_URL=PG, EMBAN_SECRET_KEY=SECRET))
    assert same.database_url == PG


def test_production_settings_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            EMBAN_DATABASE_URL=PG,
            EMBAN_SECRET_KEY=SECRET,
            EMBAN_CLICKHOUSE_URL="https://user:pw@ch.internal:8443/analytics",
            EMBAN_REDIS_URL="rediss://cache.internal:6380/2",
            EMBAN_DEFAULT_PLAN="starter",
            EMBAN_COOKIE_SECURE="Yes",
            EMBAN_LOGIN_MAX_PER_EMAIL="3",
            EMBAN_LOGIN_MAX_PER_IP="30",
            EMBAN_SESSION_TTL_SECONDS="3600",
            EMBAN_REGISTER_MAX_PER_IP="4",
            EMBAN_ACCEPT_INVITE_MAX_PER_IP="6",
            EMBAN_EMBED_RATE_PER_SECOND="5",
            EMBAN_EMBED_RATE_BURST="15",
            EMBAN_API_KEY_RATE_PER_SECOND="50",
            EMBAN_API_KEY_RATE_BURST="150",
            EMBAN_API_KEY_CACHE_TTL="2.5",
            EMBAN_AUTH_REFUSAL_DELAY="0",
            EMBAN_TRUSTED_PROXIES=" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,",
        )
    )
    assert (settings.register_max_per_ip, settings.accept_invite_max_per_ip) == (4, 6)
    assert (settings.embed_rate_per_second, settings.embed_rate_burst) == (5, 15)
    assert (settings.api_key_rate_per_second, settings.api_key_rate_burst) == (50, 150)
    assert settings.api_key_cache_ttl == 2.5
    assert settings.auth_refusal_delay == 0.0  # 0 turns the tarpit off
    assert [str(n) for n in settings.trusted_proxies] == [
        "10.0.0.0/8",
        "192.168.1.7/32",
        "fd00::/8",
    ]
    assert settings.clickhouse_url == "https://user:pw@ch.internal:8443/analytics"
    assert settings.redis_url == "rediss://cache.internal:6380/2"
    assert settings.default_plan == "starter"
    assert settings.cookie_secure is True
    assert (settings.login_max_per_email, settings.login_max_per_ip) == (3, 30)
    assert settings.session_ttl_seconds == 3600


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), (" ON ", True), ("0", False), ("False", False), ("off", False)],
)
def test_cookie_secure_booleans(tmp_path: Path, raw: str, expected: bool) -> None:
    assert Settings.from_env(env_for(tmp_path, EMBAN_COOKIE_SECURE=raw)).cookie_secure is expected


def test_sqlite_database_url_is_accepted(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/meta.sqlite3"
    settings = Settings.from_env(env_for(tmp_path, EMBAN_DATABASE_URL=url, EMBAN_SECRET_KEY=SECRET))
    assert settings.metadata_db_url == url
    assert settings.embedded is False


def test_secret_is_required_with_a_database_url(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env_for(tmp_path, EMBAN_DATABASE_URL=PG))
    assert str(caught.value) == "EMBAN_SECRET_KEY is required when EMBAN_DATABASE_URL is set"


def test_short_secret_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env_for(tmp_path, EMBAN_SECRET_KEY="s" * 31))
    assert str(caught.value) == "EMBAN_SECRET_KEY must be at least 32 characters"


def test_base_url_from_host_and_port(tmp_path: Path) -> None:
    settings = Settings.from_env(env_for(tmp_path))
    assert settings.with_listen(ALL_INTERFACES, 9000).base_url == "http://127.0.0.1:9000"
    assert settings.with_listen("::", 9001).base_url == "http://127.0.0.1:9001"
    assert settings.with_listen("emban.lan", 8080).base_url == "http://emban.lan:8080"
    assert settings.with_listen("emban.lan", 8080).port == 8080
    assert settings.port == 8000  # with_listen returns a copy


def test_base_url_from_public_url(tmp_path: Path) -> None:
    settings = Settings.from_env(env_for(tmp_path, EMBAN_PUBLIC_URL="https://analytics.acme.io/"))
    assert settings.public_url == "https://analytics.acme.io/"
    assert settings.base_url == "https://analytics.acme.io"
    assert settings.with_listen(ALL_INTERFACES, 9000).base_url == "https://analytics.acme.io"
    sub = Settings.from_env(env_for(tmp_path, EMBAN_PUBLIC_URL="http://x.io/emban/"))
    assert sub.base_url == "http://x.io/emban"


BAD_SETTINGS = [
    ({"EMBAN_LOG_FORMAT": "xml"}, "EMBAN_LOG_FORMAT must be text or json (got 'xml')"),
    ({"EMBAN_METRICS_TOKEN": "short"}, "EMBAN_METRICS_TOKEN must be at least 16 characters"),
    (
        {"EMBAN_WORKER_METRICS_PORT": "70000"},
        "EMBAN_WORKER_METRICS_PORT must be a TCP port, 1 to 65535 (got 70000)",
    ),
    (
        {"EMBAN_DATABASE_URL": "mysql://x"},
        "EMBAN_DATABASE_URL must start with postgres:// or sqlite:// (got mysql://)",
    ),
    (
        {"EMBAN_DATABASE_URL": "db.internal/emban"},
        "EMBAN_DATABASE_URL must start with postgres:// or sqlite:// (got no scheme://)",
    ),
    ({"EMBAN_DATABASE_URL": PG}, "EMBAN_SECRET_KEY is required when EMBAN_DATABASE_URL is set"),
    ({"EMBAN_SECRET_KEY": "short"}, "EMBAN_SECRET_KEY must be at least 32 characters"),
    (
        {"EMBAN_CLICKHOUSE_URL": "ftp://x"},
        "EMBAN_CLICKHOUSE_URL must look like http://user:pass@host:8123/db",
    ),
    (
        {"EMBAN_CLICKHOUSE_URL": "http:///db"},
        "EMBAN_CLICKHOUSE_URL must look like http://user:pass@host:8123/db",
    ),
    (
        {"EMBAN_REDIS_URL": "http://cache:6379"},
        "EMBAN_REDIS_URL must start with redis:// or rediss://",
    ),
    (
        {"EMBAN_PUBLIC_URL": "analytics.acme.io"},
        "EMBAN_PUBLIC_URL must be an http(s) URL such as https://x.io",
    ),
    (
        {"EMBAN_PUBLIC_URL": "ftp://acme.io"},
        "EMBAN_PUBLIC_URL must be an http(s) URL such as https://x.io",
    ),
    (
        {"EMBAN_DEFAULT_PLAN": "gold"},
        "EMBAN_DEFAULT_PLAN must be one of free, starter, pro, enterprise (got gold)",
    ),
    ({"EMBAN_COOKIE_SECURE": "maybe"}, "EMBAN_COOKIE_SECURE must be true or false (got 'maybe')"),
    (
        {"EMBAN_LOGIN_MAX_PER_EMAIL": "ten"},
        "EMBAN_LOGIN_MAX_PER_EMAIL must be a whole number (got 'ten')",
    ),
    ({"EMBAN_LOGIN_MAX_PER_IP": "0"}, "EMBAN_LOGIN_MAX_PER_IP must be positive (got 0)"),
    (
        {"EMBAN_SESSION_TTL_SECONDS": "-5"},
        "EMBAN_SESSION_TTL_SECONDS must be positive (got -5)",
    ),
    ({"EMBAN_REGISTER_MAX_PER_IP": "0"}, "EMBAN_REGISTER_MAX_PER_IP must be positive (got 0)"),
    (
        {"EMBAN_AUTH_REFUSAL_DELAY": "-0.5"},
        "EMBAN_AUTH_REFUSAL_DELAY must be zero or positive (got -0.5)",
    ),
    (
        {"EMBAN_AUTH_REFUSAL_DELAY": "soon"},
        "EMBAN_AUTH_REFUSAL_DELAY must be a number (got 'soon')",
    ),
    (
        {"EMBAN_ACCEPT_INVITE_MAX_PER_IP": "x"},
        "EMBAN_ACCEPT_INVITE_MAX_PER_IP must be a whole number (got 'x')",
    ),
    ({"EMBAN_EMBED_RATE_PER_SECOND": "0"}, "EMBAN_EMBED_RATE_PER_SECOND must be positive (got 0)"),
    ({"EMBAN_EMBED_RATE_BURST": "-1"}, "EMBAN_EMBED_RATE_BURST must be positive (got -1)"),
    (
        {"EMBAN_API_KEY_RATE_PER_SECOND": "1.5"},
        "EMBAN_API_KEY_RATE_PER_SECOND must be a whole number (got '1.5')",
    ),
    ({"EMBAN_API_KEY_RATE_BURST": "0"}, "EMBAN_API_KEY_RATE_BURST must be positive (got 0)"),
    (
        {"EMBAN_TRUSTED_PROXIES": "10.0.0.0/8, lb.internal"},
        "EMBAN_TRUSTED_PROXIES must list IP addresses or CIDR blocks (got 'lb.internal')",
    ),
    (
        {"EMBAN_LIVE_MIN_REFRESH_INTERVAL_MS": "0"},
        "EMBAN_LIVE_MIN_REFRESH_INTERVAL_MS must be positive (got 0)",
    ),
    (
        {"EMBAN_GIL_SWITCH_INTERVAL_US": "0"},
        "EMBAN_GIL_SWITCH_INTERVAL_US must be positive (got 0)",
    ),
    (
        {"EMBAN_GIL_SWITCH_INTERVAL_US": "0.5ms"},
        "EMBAN_GIL_SWITCH_INTERVAL_US must be a whole number (got '0.5ms')",
    ),
    (
        {"EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG": "0"},
        "EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG must be positive (got 0)",
    ),
    (
        {"EMBAN_ADHOC_MAX_RESULT_BYTES": "16MiB"},
        "EMBAN_ADHOC_MAX_RESULT_BYTES must be a whole number (got '16MiB')",
    ),
    (
        {"EMBAN_DISCOVERY_CACHE_SECONDS": "-1"},
        "EMBAN_DISCOVERY_CACHE_SECONDS must be zero or positive (got -1)",
    ),
]


def test_discovery_cache_seconds_is_read(tmp_path: Path) -> None:
    assert Settings.from_env(env_for(tmp_path)).discovery_cache_seconds == 30
    settings = Settings.from_env(env_for(tmp_path, EMBAN_DISCOVERY_CACHE_SECONDS="0"))
    assert settings.discovery_cache_seconds == 0


def test_adhoc_limits_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG="5",
            EMBAN_ADHOC_MAX_RESULT_BYTES="1048576",
        )
    )
    assert (settings.adhoc_max_concurrent_per_org, settings.adhoc_max_result_bytes) == (5, 1 << 20)


@pytest.mark.parametrize(("values", "message"), BAD_SETTINGS)
def test_every_settings_error_is_one_line_naming_its_variable(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env_for(tmp_path, **values))
    assert str(caught.value) == message
    variable = message.split(" ")[0]
    assert variable.startswith("EMBAN_")
    assert variable in values or variable == "EMBAN_SECRET_KEY"
    assert "\n" not in str(caught.value)


def test_unwritable_data_dir_names_the_variable(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"EMBAN_DATA_DIR": str(not_a_dir)})
    assert str(caught.value) == f"EMBAN_DATA_DIR {not_a_dir} is not writable: File exists"


def test_every_setting_has_its_own_emban_variable() -> None:
    fields = dataclasses.fields(Settings)
    names = [setting_info(item).env for item in fields]
    # Paddle's settings keep the names the spec gives them (PADDLE_NOTIFICATION_KEY ...).
    paddle = [name for name in names if name.startswith("PADDLE_")]
    assert paddle == [
        "PADDLE_NOTIFICATION_KEY",
        "PADDLE_API_KEY",
        "PADDLE_CLIENT_TOKEN",
        "PADDLE_ENVIRONMENT",
        "PADDLE_API_URL",
        "PADDLE_PRICE_IDS",
    ]
    assert all(name.startswith("EMBAN_") for name in names if name not in paddle)
    assert len(set(names)) == len(names) == 60
    assert {item.name.upper() for item in fields} == {
        name if name in paddle else name[len("EMBAN_") :] for name in names
    }


PADDLE_ENV = {
    "PADDLE_NOTIFICATION_KEY": "pdl_ntfset_secret",
    "PADDLE_API_KEY": "pdl_sdbx_apikey_1",
    "PADDLE_CLIENT_TOKEN": "test_clienttoken",
    "PADDLE_PRICE_IDS": " starter=pri_starter , pro=pri_pro,enterprise=pri_ent",
}


def test_paddle_settings_are_read_and_default_per_environment(tmp_path: Path) -> None:
    off = Settings.from_env(env_for(tmp_path))
    assert (off.billing_configured, off.missing_billing_settings()) == (
        False,
        ["PADDLE_NOTIFICATION_KEY", "PADDLE_API_KEY", "PADDLE_CLIENT_TOKEN", "PADDLE_PRICE_IDS"],
    )
    assert (off.paddle_environment, off.paddle_base_url) == (
        "sandbox",
        "https://sandbox-api.paddle.com",
    )
    on = Settings.from_env(env_for(tmp_path, **PADDLE_ENV))
    assert on.billing_configured is True
    assert on.paddle_price_ids == (
        ("starter", "pri_starter"),
        ("pro", "pri_pro"),
        ("enterprise", "pri_ent"),
    )
    assert (on.paddle_notification_key, on.paddle_api_key, on.paddle_client_token) == (
        "pdl_ntfset_secret",
        "pdl_sdbx_apikey_1",
        "test_clienttoken",
    )
    live = Settings.from_env(env_for(tmp_path, **PADDLE_ENV, PADDLE_ENVIRONMENT="production"))
    assert live.paddle_base_url == "https://api.paddle.com"
    local = Settings.from_env(
        env_for(tmp_path, **PADDLE_ENV, PADDLE_API_URL="http://127.0.0.1:9999/")
    )
    assert local.paddle_base_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"PADDLE_API_KEY": "k"},
            "PADDLE_NOTIFICATION_KEY is required when Paddle billing is configured (missing: "
            "PADDLE_NOTIFICATION_KEY, PADDLE_CLIENT_TOKEN, PADDLE_PRICE_IDS)",
        ),
        (
            {k: v for k, v in PADDLE_ENV.items() if k != "PADDLE_PRICE_IDS"},
            "PADDLE_PRICE_IDS is required when Paddle billing is configured (missing: "
            "PADDLE_PRICE_IDS)",
        ),
        (
            {"PADDLE_ENVIRONMENT": "live"},
            "PADDLE_ENVIRONMENT must be sandbox or production (got live)",
        ),
        (
            {"PADDLE_PRICE_IDS": "gold=pri_1"},
            "PADDLE_PRICE_IDS must look like starter=pri_...,pro=pri_...,enterprise=pri_... "
            "(got 'gold=pri_1')",
        ),
        (
            {"PADDLE_PRICE_IDS": "starter=pri_1,pro=pri_1"},
            "PADDLE_PRICE_IDS names a plan or a price twice",
        ),
        (
            {"PADDLE_API_URL": "paddle"},
            "PADDLE_API_URL must be an http(s) URL such as https://x.io",
        ),
    ],
)
def test_a_partial_or_bad_paddle_configuration_is_one_line(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env_for(tmp_path, **values))
    assert str(caught.value) == message


def test_observability_settings_are_read(tmp_path: Path) -> None:
    defaults = Settings.from_env(env_for(tmp_path))
    assert (defaults.log_format, defaults.metrics_token, defaults.worker_metrics_port) == (
        "text",
        None,
        None,
    )
    settings = Settings.from_env(
        env_for(
            tmp_path,
            EMBAN_LOG_FORMAT=" JSON ",
            EMBAN_METRICS_TOKEN="scrape-token-0123456789",
            EMBAN_WORKER_METRICS_PORT="9464",
        )
    )
    assert (settings.log_format, settings.metrics_token, settings.worker_metrics_port) == (
        "json",
        "scrape-token-0123456789",
        9464,
    )


def test_listen_address_ttls_and_windows_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            EMBAN_HOST=ALL_INTERFACES,
            EMBAN_PORT="9100",
            EMBAN_INVITE_TTL_SECONDS="600",
            EMBAN_LOGIN_WINDOW_SECONDS="60",
            EMBAN_SIGNUP_WINDOW_SECONDS="120",
            EMBAN_LOG_LEVEL="debug",
            EMBAN_QUERY_MAX_POINTS="5000",
        )
    )
    assert (settings.host, settings.port) == (ALL_INTERFACES, 9100)
    assert settings.base_url == "http://127.0.0.1:9100"
    assert settings.invite_ttl_seconds == 600
    assert (settings.login_window_seconds, settings.signup_window_seconds) == (60, 120)
    assert settings.log_level == "DEBUG"
    assert settings.query_max_points == 5000
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env_for(tmp_path, EMBAN_PORT="http"))
    assert str(caught.value) == "EMBAN_PORT must be a whole number (got 'http')"
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env_for(tmp_path, EMBAN_LOG_LEVEL="loud"))
    assert str(caught.value) == "EMBAN_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR (got LOUD)"


def test_operations_doc_carries_the_generated_settings_table() -> None:
    """docs/operations.md's table is `emban settings-doc --write docs/operations.md` output."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text("utf-8")
    assert with_settings_table(doc) == doc, "run: emban settings-doc --write docs/operations.md"
    table = settings_table()
    assert table in doc
    assert table.splitlines()[0] == "| variable | default | what it sets |"
    assert "| `EMBAN_PORT` | 8000 | port `emban serve` listens on (`--port` wins) |" in table
    assert "| `EMBAN_COOKIE_SECURE` | false |" in table
    assert len(table.splitlines()) == 2 + 60


def test_settings_doc_command_prints_and_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["settings-doc"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == settings_table()
    doc = tmp_path / "ops.md"
    doc.write_text(f"# Ops\n\n{DOC_BEGIN}\nstale\n{DOC_END}\n\nafter\n")
    with pytest.raises(SystemExit):
        main(["settings-doc", "--write", str(doc)])
    assert doc.read_text() == f"# Ops\n\n{DOC_BEGIN}\n{settings_table()}{DOC_END}\n\nafter\n"
    doc.write_text("# no markers\n")
    with pytest.raises(ValueError, match="settings table"):
        main(["settings-doc", "--write", str(doc)])


def test_alert_report_and_webhook_settings(tmp_path: Path) -> None:
    base = {"EMBAN_DATA_DIR": str(tmp_path)}
    read = Settings.from_env(
        {
            **base,
            "EMBAN_ALERT_INTERVAL_SECONDS": "30",
            "EMBAN_SMTP_URL": "smtps://u:p@mail.example.com",
            "EMBAN_EMAIL_FROM": "alerts@example.com",
            "EMBAN_WEBHOOK_ALLOW_HOSTS": " 127.0.0.1, hooks.internal ,",
            "EMBAN_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
            "EMBAN_CHROMIUM_PATH": "/opt/chromium",
            "EMBAN_RENDER_URL": "http://127.0.0.1:8000",
        }
    )
    assert (
        read.alert_interval_seconds,
        read.smtp_url,
        read.email_from,
        read.webhook_allow_hosts,
        read.webhook_retry_base_seconds,
        read.chromium_path,
        read.render_url,
    ) == (
        30,
        "smtps://u:p@mail.example.com",
        "alerts@example.com",
        ("127.0.0.1", "hooks.internal"),
        0.5,
        "/opt/chromium",
        "http://127.0.0.1:8000",
    )
    defaults = Settings.from_env(base)
    assert (defaults.alert_interval_seconds, defaults.smtp_url, defaults.webhook_allow_hosts) == (
        60,
        None,
        (),
    )
    refused = {
        "EMBAN_SMTP_URL": ("http://mail", "EMBAN_SMTP_URL must start with smtp:// or smtps://"),
        "EMBAN_WEBHOOK_RETRY_BASE_SECONDS": (
            "-1",
            "EMBAN_WEBHOOK_RETRY_BASE_SECONDS must be positive (got -1)",
        ),
        "EMBAN_ALERT_INTERVAL_SECONDS": (
            "0",
            "EMBAN_ALERT_INTERVAL_SECONDS must be positive (got 0)",
        ),
        "EMBAN_RENDER_URL": (
            "ftp://x",
            "EMBAN_RENDER_URL must be an http(s) URL such as https://x.io",
        ),
    }
    for variable, (value, message) in refused.items():
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({**base, variable: value})
        assert str(caught.value) == message


def test_serve_stops_on_a_partial_paddle_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PADDLE_API_KEY", "pdl_sdbx_apikey_1")
    monkeypatch.setenv("PADDLE_CLIENT_TOKEN", "test_token")
    with pytest.raises(SystemExit) as exited:
        main(["serve"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "emban: configuration error: PADDLE_NOTIFICATION_KEY is required when Paddle billing is "
        "configured (missing: PADDLE_NOTIFICATION_KEY, PADDLE_PRICE_IDS)\n"
    )
