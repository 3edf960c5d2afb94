#!/usr/bin/env bash
# Make a real ClickHouse server answer on 127.0.0.1:18123 for the HTTP-store tests.
#
# Installs Debian's clickhouse-server (18.16) when missing, then starts it in the background with a
# private config under $EMBAN_CLICKHOUSE_DIR (default /tmp/emban-clickhouse): HTTP 18123, TCP 19000,
# interserver 19009, so it never collides with a ClickHouse on the default ports. Users: `default`
# (no password) and `emban` / `secret`. Does nothing when something already answers `SELECT 1`.
set -euo pipefail

HTTP_PORT="${EMBAN_CLICKHOUSE_HTTP_PORT:-18123}"
TCP_PORT="${EMBAN_CLICKHOUSE_TCP_PORT:-19000}"
INTERSERVER_PORT="${EMBAN_CLICKHOUSE_INTERSERVER_PORT:-19009}"
DIR="${EMBAN_CLICKHOUSE_DIR:-/tmp/emban-clickhouse}"
WAIT_SECONDS=60
URL="http://127.0.0.1:${HTTP_PORT}/"

answers() {
  [ "$(curl -sS --max-time 2 --data-binary 'SELECT 1' "$URL" 2>/dev/null)" = "1" ]
}

if answers; then
  echo "ClickHouse answers on 127.0.0.1:${HTTP_PORT}"
  exit 0
fi

alive() {  # running, not a zombie (a child that exited stays one until this shell ends)
  [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -c1)" != "Z" ]
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

packages=()
if ! dpkg-query -W -f='${Status}' clickhouse-server 2>/dev/null | grep -q 'install ok installed'; then
  packages+=(clickhouse-server)
fi
command -v curl >/dev/null 2>&1 || packages+=(curl)
[ -e /usr/share/zoneinfo/UTC ] || packages+=(tzdata)  # the config pins timezone UTC
if [ "${#packages[@]}" -gt 0 ]; then
  echo "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Try the package lists already on the machine first; refresh them only if that fails
  # (fresh images often ship without lists, or with stale ones pointing at removed files).
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${packages[@]}" >/dev/null 2>&1; then
    if ! { as_root apt-get update -q >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${packages[@]}" >/dev/null; }; then
      echo "ensure-clickhouse: could not install ${packages[*]} with apt-get" >&2
      exit 1
    fi
  fi
fi

BINARY=""
for candidate in /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
  if [ -x "$candidate" ]; then BINARY="$candidate"; break; fi
done
if [ -z "$BINARY" ] && command -v clickhouse >/dev/null 2>&1; then
  BINARY="$(command -v clickhouse) server"
fi
if [ -z "$BINARY" ]; then
  echo "ensure-clickhouse: no clickhouse-server binary after installing the package" >&2
  exit 1
fi

mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas" "$DIR/log"

cat >"$DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$DIR/log/clickhouse-server.log</log>
        <errorlog>$DIR/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$HTTP_PORT</http_port>
    <tcp_port>$TCP_PORT</tcp_port>
    <interserver_http_port>$INTERSERVER_PORT</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>
    <users_config>$DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
XML

cat >"$DIR/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <emban>
            <password>secret</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </emban>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML

# A server from an earlier run that no longer answers (hung, or died leaving its pid file).
if [ -s "$DIR/clickhouse-server.pid" ]; then
  old_pid="$(cat "$DIR/clickhouse-server.pid")"
  if grep -q clickhouse "/proc/$old_pid/cmdline" 2>/dev/null; then
    kill "$old_pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$old_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$DIR/clickhouse-server.pid"
fi

echo "starting ClickHouse on 127.0.0.1:${HTTP_PORT} (data in $DIR)"
# shellcheck disable=SC2086  # BINARY may be "clickhouse server"
cd "$DIR"
nohup $BINARY --config-file="$DIR/config.xml" >"$DIR/log/stdout.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$DIR/clickhouse-server.pid"
cd - >/dev/null

deadline=$((SECONDS + WAIT_SECONDS))
while [ "$SECONDS" -lt "$deadline" ]; do
  if answers; then
    echo "ClickHouse $(curl -sS --data-binary 'SELECT version()' "$URL") answers on 127.0.0.1:${HTTP_PORT}"
    exit 0
  fi
  if ! alive "$pid"; then
    echo "ensure-clickhouse: the ClickHouse server exited while starting; see $DIR/log/" >&2
    tail -n 20 "$DIR/log/stdout.log" "$DIR/log/clickhouse-server.err.log" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.5
done

echo "ensure-clickhouse: ClickHouse did not answer SELECT 1 on 127.0.0.1:${HTTP_PORT} within" \
  "${WAIT_SECONDS}s; see $DIR/log/" >&2
tail -n 20 "$DIR/log/stdout.log" "$DIR/log/clickhouse-server.err.log" >&2 2>/dev/null || true
exit 1
