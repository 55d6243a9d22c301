#!/usr/bin/env bash
# The test services of marsha_runner, in one place: `make test` and `.ci/run` both come here.
#
#   bash .ci/services.sh COMMAND...   start what is missing, run COMMAND with the services in
#                                     its environment, stop what was started; COMMAND's exit code
#   . .ci/services.sh                 (sourced) defines services_up / services_down
#
# PostgreSQL and Redis: DATABASE_URL / REDIS_URL when the environment sets them; else the ones
# answering on 127.0.0.1 (CI_PG_PORT / CI_REDIS_PORT, default 5432 / 6379); else our own,
# started from the machine's binaries (installed with apt-get under CI=true as root) and stopped
# at exit. S3: S3_TEST_ENDPOINT when set, else a SeaweedFS (`weed mini` from the venv, loopback,
# free ports, SigV4 credentials enforced). What cannot be had is said here, and the tests that
# need it skip with that reason (or fail under CI=true).
#
# The test database is named per run (marsha_runner_test_<pid>) and dropped at exit; the Redis
# database is CI_REDIS_DB (default 15), so parallel runs on one machine can keep apart.

SERVICES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES_PY="$SERVICES_ROOT/.venv/bin/python"
SERVICES_WORK=""
SERVICES_WEED_PID=""
SERVICES_REDIS_STARTED=""
SERVICES_PG_STARTED=""   # "VERSION CLUSTER" (pg_createcluster, root) or "initdb" (a user's own)
SERVICES_PG_DB=""
SERVICES_PG_PORT=""
SERVICES_PG_CLUSTER=marsha_runner_ci

services_log() { printf '==> services: %s\n' "$*" >&2; }

services_port_open() {  # HOST PORT
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

services_wait_for() {  # SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2 rc
    shift 2
    for _ in $(seq $((seconds * 10))); do
        rc=0
        "$@" || rc=$?
        if [ "$rc" = 0 ]; then return 0; fi
        if [ "$rc" = 99 ]; then break; fi  # the command says waiting is pointless
        sleep 0.1
    done
    echo "$what did not come up within ${seconds}s" >&2
    return 1
}

services_free_port() {  # a free loopback port whose +10000 (SeaweedFS gRPC) is free too
    python3 - <<'EOF'
import socket

while True:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if port + 10000 > 65535:
        continue
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port + 10000))
    except OSError:
        continue
    print(port)
    break
EOF
}

SERVICES_APT_UPDATED=""
services_can_install() {
    [ "${CI:-}" = true ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null
}
services_apt_install() {
    if [ -z "$SERVICES_APT_UPDATED" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        SERVICES_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL ------------------------------------------------------------------------------

services_pg_usable() {  # PORT: answers and lets user postgres in without a password
    if command -v psql >/dev/null; then
        psql -qtA -h 127.0.0.1 -p "$1" -U postgres -d postgres -w -c 'select 1' >/dev/null 2>&1
    else
        services_port_open 127.0.0.1 "$1"
    fi
}

services_pg_own() {  # PORT: a throwaway PostgreSQL of our own, trust on loopback
    local port=$1 version
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        if services_can_install; then
            services_log "installing PostgreSQL (apt-get)"
            services_apt_install postgresql
        else
            services_log "no PostgreSQL binaries: the PostgreSQL tests will skip"
            return 1
        fi
    fi
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if services_pg_usable "$port"; then
        return 0  # the package just started Debian's own cluster, and it lets us in
    fi
    if services_port_open 127.0.0.1 "$port"; then
        if [ "$(id -u)" = 0 ] && [ -f "/etc/postgresql/$version/main/pg_hba.conf" ] \
            && [ "${CI:-}" = true ]; then
            # The package started Debian's own cluster (systemd machines): let the tests in.
            sed -i "1i host all all 127.0.0.1/32 trust  # marsha_runner .ci/services.sh" \
                "/etc/postgresql/$version/main/pg_hba.conf"
            SERVICES_PG_STARTED="$version main"
            pg_ctlcluster --skip-systemctl-redirect "$version" main reload
            services_wait_for 30 PostgreSQL services_pg_usable "$port"
            return
        fi
        port=$(services_free_port)  # taken by something that will not let us in
    fi
    services_log "starting our own PostgreSQL $version on 127.0.0.1:$port"
    if [ "$(id -u)" = 0 ] && command -v pg_createcluster >/dev/null; then
        if pg_lsclusters -h | awk '{print $2}' | grep -qx "$SERVICES_PG_CLUSTER"; then
            pg_dropcluster --stop "$version" "$SERVICES_PG_CLUSTER"  # left by a killed run
        fi
        pg_createcluster "$version" "$SERVICES_PG_CLUSTER" --port "$port" \
            -- --auth-local=trust --auth-host=trust >/dev/null
        SERVICES_PG_STARTED="$version $SERVICES_PG_CLUSTER"
        pg_ctlcluster --skip-systemctl-redirect "$version" "$SERVICES_PG_CLUSTER" start
    else
        local bin=/usr/lib/postgresql/$version/bin
        "$bin/initdb" -D "$SERVICES_WORK/pg" -U postgres --auth=trust >/dev/null
        "$bin/pg_ctl" -D "$SERVICES_WORK/pg" -l "$SERVICES_WORK/pg.log" -w -o \
            "-p $port -k $SERVICES_WORK -c listen_addresses=127.0.0.1" start >/dev/null
        SERVICES_PG_STARTED=initdb
    fi
    SERVICES_PG_PORT=$port
    services_wait_for 30 PostgreSQL services_pg_usable "$port"
}

services_pg_up() {
    if [ -n "${DATABASE_URL:-}" ]; then
        services_log "PostgreSQL: DATABASE_URL from the environment (${DATABASE_URL%%@*}@…)"
        return
    fi
    local port=${CI_PG_PORT:-5432}
    if services_pg_usable "$port"; then
        services_log "PostgreSQL: using the one answering on 127.0.0.1:$port"
        SERVICES_PG_PORT=$port
    elif services_pg_own "$port"; then
        :
    else
        return 0  # SQLite; the PostgreSQL tests say why they skip
    fi
    port=${SERVICES_PG_PORT:-$port}
    SERVICES_PG_PORT=$port
    # One database name per run, so two runs on one machine do not drop each other's test db.
    SERVICES_PG_DB="marsha_runner_test_$$"
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$SERVICES_PG_DB"
}

# --- Redis -----------------------------------------------------------------------------------

services_redis_up() {
    if [ -n "${REDIS_URL:-}" ]; then
        services_log "Redis: REDIS_URL from the environment ($REDIS_URL)"
        return
    fi
    local port=${CI_REDIS_PORT:-6379}
    if services_port_open 127.0.0.1 "$port"; then
        services_log "Redis: using the one answering on 127.0.0.1:$port"
    else
        if ! command -v redis-server >/dev/null; then
            if services_can_install; then
                services_log "installing Redis (apt-get)"
                services_apt_install redis-server
            else
                services_log "no redis-server: the Redis tests will skip"
                return 0
            fi
        fi
        if ! services_port_open 127.0.0.1 "$port"; then  # the package may have started it
            services_log "starting our own Redis on 127.0.0.1:$port"
            redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" \
                --appendonly no --dir "$SERVICES_WORK" --pidfile "$SERVICES_WORK/redis.pid" \
                --logfile "$SERVICES_WORK/redis.log"
            SERVICES_REDIS_STARTED=1
            services_wait_for 15 Redis services_port_open 127.0.0.1 "$port" || return 1
        fi
    fi
    export REDIS_URL="redis://127.0.0.1:$port/${CI_REDIS_DB:-15}"
}

# --- SeaweedFS -------------------------------------------------------------------------------

services_s3_status() {  # HTTP status of an unsigned request: METHOD URL
    python3 - "$1" "$2" <<'EOF'
import sys
import urllib.error
import urllib.request

try:
    print(urllib.request.urlopen(urllib.request.Request(sys.argv[2], method=sys.argv[1])).status)
except urllib.error.HTTPError as err:
    print(err.code)
except OSError:
    print(0)
EOF
}

services_s3_up() {
    if [ -n "${S3_TEST_ENDPOINT:-}" ]; then
        services_log "S3: S3_TEST_ENDPOINT from the environment ($S3_TEST_ENDPOINT)"
        return
    fi
    local weed="$SERVICES_ROOT/.venv/bin/weed" port access secret status
    if [ ! -x "$weed" ]; then
        services_log "no SeaweedFS in the venv (make install): the S3 tests will skip"
        return 0
    fi
    port=$(services_free_port)
    access="ci-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
    secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
    cat >"$SERVICES_WORK/s3.json" <<EOF
{"identities": [{"name": "ci", "credentials": [{"accessKey": "$access",
  "secretKey": "$secret"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
    mkdir -p "$SERVICES_WORK/weed"
    services_log "starting SeaweedFS (S3 on 127.0.0.1:$port)"
    "$weed" mini -dir="$SERVICES_WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3.port="$port" -s3.config="$SERVICES_WORK/s3.json" \
        -master.port="$(services_free_port)" -volume.port="$(services_free_port)" \
        -filer.port="$(services_free_port)" -admin.port="$(services_free_port)" \
        -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.telemetry=false >"$SERVICES_WORK/weed.log" 2>&1 &
    SERVICES_WEED_PID=$!
    _services_weed_up() {
        kill -0 "$SERVICES_WEED_PID" 2>/dev/null || return 99  # died: stop waiting
        [ "$(services_s3_status GET "http://127.0.0.1:$port/")" != 0 ]
    }
    if ! services_wait_for 60 "SeaweedFS S3" _services_weed_up; then
        tail -n 50 "$SERVICES_WORK/weed.log" >&2
        return 1
    fi
    # Credentials must be enforced: an anonymous request may not create a bucket.
    status=$(services_s3_status PUT "http://127.0.0.1:$port/ci-anonymous-bucket")
    if [ "$status" != 403 ]; then
        echo "SeaweedFS accepted an unsigned CreateBucket (HTTP $status): S3 auth is off" >&2
        return 1
    fi
    export S3_TEST_ENDPOINT="http://127.0.0.1:$port"
    export S3_TEST_ACCESS_KEY="$access"
    export S3_TEST_SECRET_KEY="$secret"
}

# --- Up and down -----------------------------------------------------------------------------

services_up() {
    SERVICES_WORK=$(mktemp -d "${TMPDIR:-/tmp}/marsha-runner-services.XXXXXX")
    services_pg_up || return 1
    services_redis_up || return 1
    services_s3_up || return 1
}

services_down() {
    local pid=$SERVICES_WEED_PID
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        services_log "stopping SeaweedFS (pid $pid)"
        kill "$pid"
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    SERVICES_WEED_PID=""
    if [ -n "$SERVICES_PG_DB" ] && command -v psql >/dev/null; then
        # pytest-django drops its test database, unless a connection was still open then.
        psql -q -h 127.0.0.1 -p "$SERVICES_PG_PORT" -U postgres -d postgres -w \
            -c "DROP DATABASE IF EXISTS test_$SERVICES_PG_DB WITH (FORCE)" 2>/dev/null
    fi
    SERVICES_PG_DB=""
    if [ -n "$SERVICES_REDIS_STARTED" ] && [ -f "$SERVICES_WORK/redis.pid" ]; then
        services_log "stopping the Redis started here"
        kill "$(cat "$SERVICES_WORK/redis.pid")" 2>/dev/null
    fi
    SERVICES_REDIS_STARTED=""
    if [ "$SERVICES_PG_STARTED" = initdb ]; then
        services_log "stopping the PostgreSQL started here"
        "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl" \
            -D "$SERVICES_WORK/pg" -m fast stop >/dev/null
    elif [ -n "$SERVICES_PG_STARTED" ]; then
        services_log "stopping the PostgreSQL cluster started here ($SERVICES_PG_STARTED)"
        # shellcheck disable=SC2086
        pg_ctlcluster --skip-systemctl-redirect $SERVICES_PG_STARTED stop
        if [ "${SERVICES_PG_STARTED#* }" = "$SERVICES_PG_CLUSTER" ]; then
            # shellcheck disable=SC2086
            pg_dropcluster $SERVICES_PG_STARTED
        fi
    fi
    SERVICES_PG_STARTED=""
    if [ -n "$SERVICES_WORK" ]; then rm -rf "$SERVICES_WORK"; fi
    SERVICES_WORK=""
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    if [ $# = 0 ]; then
        echo "usage: bash .ci/services.sh COMMAND..." >&2
        exit 2
    fi
    services_exit() {
        local code=$?
        trap - EXIT INT TERM
        services_down
        exit "$code"
    }
    trap services_exit EXIT
    trap 'exit 130' INT TERM  # through services_exit
    services_up || exit 1
    "$@"
fi
