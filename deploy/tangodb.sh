#!/usr/bin/env bash
# A private, loopback-only Tango database: a MariaDB server of its own plus Debian's C++
# DataBaseds (Tango 9.3), the same pair a facility runs. The integration tests start it; a
# developer can too (deploy/README.md, "A real Tango database by hand").
#
#   deploy/tangodb.sh install        apt-get tango-db, tango-accesscontrol, mariadb-server (once,
#                                    needs root or sudo)
#   deploy/tangodb.sh start [PORT]   start MariaDB + DataBaseds; prints TANGO_HOST=127.0.0.1:PORT
#   deploy/tangodb.sh stop           stop both (whatever part of them is running)
#   deploy/tangodb.sh status         say what runs, exit 1 if DataBaseds is not up
#
# Everything lives in the state folder ${PLANTDS_STATE:-$PWD/.state}: the MariaDB datadir
# (mariadb/), its socket, the pid files and the logs. Data persist across stop/start; point
# PLANTDS_STATE at an empty folder for a fresh database.
set -euo pipefail

STATE=${PLANTDS_STATE:-$PWD/.state}
DATADIR=$STATE/mariadb
SOCKET=$STATE/mariadbd.sock
MARIADB_PID=$STATE/mariadbd.pid
MARIADB_LOG=$STATE/mariadbd.log
DS_PID=$STATE/databaseds.pid
DS_LOG=$STATE/databaseds.log
PORT_FILE=$STATE/tango_host

# The schema script dbconfig-common would run; it `source`s create_db_tables.sql and
# stored_proc.sql (whose DELIMITER lines only the mariadb client understands) and calls
# tango.init_tac_tables(), so the database must be named "tango".
SCHEMA=/usr/share/dbconfig-common/data/tango-db/install/mysql
DATABASEDS=/usr/lib/tango/DataBaseds
DB_NAME=tango
DB_USER=tango
DB_PASSWORD=tango    # loopback-only throwaway server; the password guards nothing

TOOL=tangodb.sh
# shellcheck source=deploy/common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"

cmd_install() {
    local installed
    installed=$(dpkg-query -W -f='${Status}\n' tango-db tango-accesscontrol mariadb-server \
                2>/dev/null | grep -c 'install ok installed' || true)
    if [ "$installed" = 3 ]; then
        echo "tango-db, tango-accesscontrol and mariadb-server are already installed"
        return 0
    fi
    preseed_tango_db
    install_without_services tango-db tango-accesscontrol mariadb-server
}

sql() {  # sql [ARGS...]: the mariadb client as root over our socket only
    mariadb --no-defaults --socket="$SOCKET" --user=root "$@"
}

start_mariadb() {
    local user port
    user=$(id -un)   # mariadbd refuses to run as root unless told so explicitly
    command -v mariadbd >/dev/null || PATH=$PATH:/usr/sbin
    command -v mariadbd >/dev/null || die "mariadbd not found: run '$0 install' first"
    if [ ! -d "$DATADIR/mysql" ]; then
        mkdir -p "$DATADIR"
        mariadb-install-db --no-defaults --user="$user" --datadir="$DATADIR" \
            --auth-root-authentication-method=normal --skip-test-db \
            >"$STATE/mariadb-install-db.log" 2>&1 \
            || die "mariadb-install-db failed, see $STATE/mariadb-install-db.log"
    fi
    port=$(free_port)
    # --no-defaults: nothing from /etc/mysql (system socket, port, bind address) leaks in.
    # --tmpdir: its temporary tables stay in the state folder, out of a shared /tmp that other
    # servers and clean-ups on the host also use (a table lost there fails the query).
    mkdir -p "$STATE/tmp"
    mariadbd --no-defaults --user="$user" --datadir="$DATADIR" --tmpdir="$STATE/tmp" \
        --bind-address=127.0.0.1 --port="$port" --socket="$SOCKET" \
        --pid-file="$MARIADB_PID" --log-error="$MARIADB_LOG" \
        --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=16M \
        </dev/null >/dev/null 2>&1 &
    echo $! >"$MARIADB_PID"
    for _ in $(seq 100); do
        sql -e 'SELECT 1' >/dev/null 2>&1 && { echo "$port"; return 0; }
        alive "$MARIADB_PID" || break
        sleep 0.1
    done
    die "mariadbd did not come up, see $MARIADB_LOG"
}

load_schema() {
    if [ -n "$(sql -N -e "SHOW DATABASES LIKE '$DB_NAME'")" ]; then
        return 0    # persisted from an earlier start
    fi
    # root keeps only its socket login; over TCP only the tango account exists.
    sql <<EOF
DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';
FLUSH PRIVILEGES;
CREATE DATABASE $DB_NAME;
CREATE USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
EOF
    sql "$DB_NAME" <"$SCHEMA" >"$STATE/schema.log" 2>&1 \
        || { sql -e "DROP DATABASE $DB_NAME;
                     DROP USER '$DB_USER'@'127.0.0.1', '$DB_USER'@'localhost'";
             die "loading $SCHEMA failed, see $STATE/schema.log"; }
}

start_databaseds() {
    local tango_port=$1 mysql_port=$2
    [ -x "$DATABASEDS" ] || die "$DATABASEDS not found: run '$0 install' first"
    # DataBaseds 9.3 reads MYSQL_HOST as host[:port]; TANGO_HOST keeps /etc/tangorc out.
    env TANGO_HOST="127.0.0.1:$tango_port" \
        MYSQL_HOST="127.0.0.1:$mysql_port" MYSQL_USER="$DB_USER" \
        MYSQL_PASSWORD="$DB_PASSWORD" MYSQL_DATABASE="$DB_NAME" \
        "$DATABASEDS" 2 -ORBendPoint "giop:tcp:127.0.0.1:$tango_port" \
        </dev/null >"$DS_LOG" 2>&1 &
    echo $! >"$DS_PID"
}

wait_databaseds() {
    local tango_port=$1
    for _ in $(seq 150); do
        alive "$DS_PID" || die "DataBaseds exited, see $DS_LOG"
        if TANGO_HOST="127.0.0.1:$tango_port" tango_admin --ping-database >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    die "DataBaseds did not answer within 30 s, see $DS_LOG"
}

cmd_start() {
    local tango_port=${1:-} mysql_port
    mkdir -p "$STATE"
    if alive "$DS_PID"; then
        die "already running ($(cat "$PORT_FILE" 2>/dev/null)); '$0 stop' first"
    fi
    cmd_stop >/dev/null    # leftovers of a crashed run would hold the datadir's lock
    [ ${#SOCKET} -lt 100 ] \
        || die "socket path $SOCKET is too long for a unix socket: use a shorter PLANTDS_STATE"
    tango_port=$(free_port "$tango_port") || die "port ${1:-} on 127.0.0.1 is taken"
    # A failure half-way leaves nothing behind.
    trap '[ $? -eq 0 ] || cmd_stop >/dev/null 2>&1' EXIT
    mysql_port=$(start_mariadb)
    load_schema
    start_databaseds "$tango_port" "$mysql_port"
    wait_databaseds "$tango_port"
    echo "$mysql_port" >"$STATE/mysql_port"   # for TangoAccessControl, which reads MariaDB too
    echo "TANGO_HOST=127.0.0.1:$tango_port" | tee "$PORT_FILE"
}

cmd_stop() {
    stop_pid "$DS_PID" DataBaseds
    stop_pid "$MARIADB_PID" mariadbd
    rm -f "$PORT_FILE"
}

cmd_status() {
    alive "$MARIADB_PID" && echo "mariadbd running (pid $(cat "$MARIADB_PID"))" \
                         || echo "mariadbd not running"
    if alive "$DS_PID"; then
        echo "DataBaseds running (pid $(cat "$DS_PID")), $(cat "$PORT_FILE" 2>/dev/null)"
    else
        echo "DataBaseds not running"; return 1
    fi
}

case ${1:-} in
    install|stop|status) "cmd_$1" ;;
    start) shift; cmd_start "$@" ;;
    *) echo "usage: $0 install | start [PORT] | stop | status" >&2; exit 2 ;;
esac
