# Shared by deploy/tangodb.sh and deploy/hdbpp.sh (sourced; they set TOOL to their own name for
# messages): root, packages, ports and the processes they start and stop.

# apt-get that waits for the package system's locks (another install on the host) and uses sudo
# when needed.
APT_GET=$(dirname "${BASH_SOURCE[0]}")/../scripts/apt-get

die() { echo "$TOOL: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "installing packages needs root or sudo"; fi
}

preseed_tango_db() {
    # No dbconfig run: tango-db must not create its schema in the system MariaDB; our scripts
    # load the schema into their private servers. debconf's database is locked while another
    # package installs: wait as apt-get does.
    local deadline=$((SECONDS + 600))
    until as_root debconf-set-selections <<'SELECTIONS'
tango-db tango-db/dbconfig-install boolean false
tango-common tango-common/tango-host string 127.0.0.1:10000
SELECTIONS
    do
        [ "$SECONDS" -lt "$deadline" ] || die "debconf-set-selections failed for 10 minutes"
        sleep 5
    done
}

install_without_services() {  # install_without_services PACKAGE...
    # The packages' own services (system MariaDB on 3306, DataBaseds on 10000, the system
    # PostgreSQL cluster) must not be started by their install scripts: we run private,
    # loopback-only servers instead.
    local policy=/usr/sbin/policy-rc.d added="" status=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
        added=1
    fi
    "$APT_GET" update || status=$?
    [ "$status" -ne 0 ] || "$APT_GET" install -y --no-install-recommends "$@" || status=$?
    [ -z "$added" ] || as_root rm -f "$policy"
    return "$status"
}

free_port() {  # free_port [PORT]: print PORT (default: any) if it can be bound on 127.0.0.1
    python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))
print(s.getsockname()[1])' "${1:-0}" 2>/dev/null
}

running() {  # running PID: the process exists and is no zombie (an init that is slow to reap
             # would otherwise make a dead server look alive)
    local state
    state=$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null) \
        && [ -n "$state" ] && [ "$state" != Z ]
}

alive() {  # alive PIDFILE: the process named in PIDFILE runs
    [ -s "$1" ] && running "$(cat "$1")"
}

stop_pid() {  # stop_pid PIDFILE NAME: SIGTERM, wait up to 10 s, then SIGKILL
    local pid
    [ -s "$1" ] || return 0
    pid=$(cat "$1")
    if running "$pid"; then
        kill -TERM "$pid"
        for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
        if running "$pid"; then
            echo "$TOOL: $2 ($pid) ignored SIGTERM, killing it" >&2
            kill -KILL "$pid"
        fi
        echo "stopped $2 ($pid)"
    fi
    rm -f "$1"
}
