#!/usr/bin/env bash
# HDB++, Tango's history database, built and run by the project: the event subscriber
# (hdb++es-srv), the configuration manager (hdb++cm-srv) and a private, loopback-only
# PostgreSQL 15 holding the archive (libhdbpp-timescale's schema). The integration tests and
# `plantds demo --archive` use it; a developer can too (deploy/README.md, "HDB++").
#
#   deploy/hdbpp.sh install   apt-get the build and run dependencies (once, needs root or sudo)
#   deploy/hdbpp.sh build     build the four HDB++ parts into the cache (a warm run does nothing)
#   deploy/hdbpp.sh start     start PostgreSQL (HDB++ schema) and register + start the subscriber
#                             and the manager in $TANGO_HOST; prints their names
#   deploy/hdbpp.sh stop [--purge]   stop everything start started (--purge: and delete the
#                             archive's data and the state folder)
#   deploy/hdbpp.sh status    say what runs, exit 1 if something is down
#   deploy/hdbpp.sh restart-subscriber   stop and start the event subscriber alone (it resumes
#                             from the AttributeList it wrote)
#   deploy/hdbpp.sh prefix    print the install prefix of the build (building it if needed)
#
# Sources: the four tarballs in $HDBPP_SOURCES (default <repo>/../shared/vendor/hdbpp) when
# present, else the pinned upstream commits downloaded from GitHub. Either way each source tree
# must match its pinned content hash below. The build goes to
# ${HDBPP_CACHE:-${XDG_CACHE_HOME:-~/.cache}/plantds/hdbpp}/<key>, the key hashing the sources,
# the build recipe and the Debian libraries it links, so a warm run never rebuilds.
#
# State (PostgreSQL datadir, pid files, logs, the archive's port): ${PLANTDS_STATE:-$PWD/.state}/hdbpp.
# Data persist across stop/start; an empty PLANTDS_STATE gives a fresh archive. As root the
# datadir belongs to user postgres (PostgreSQL refuses root); when postgres cannot enter the state
# folder (e.g. a 0700 pytest tmp folder) the datadir lives in /var/tmp/plantds-hdbpp/<hash of the
# state folder> instead, linked from the state folder; `stop --purge` removes the data.
#
# Device names (override with the variables): HDBPP_ES_DEVICE [archiving/hdbpp/es-plant] in server
# hdb++es-srv/$HDBPP_INSTANCE, HDBPP_CM_DEVICE [archiving/hdbpp/cm-plant] in hdb++cm-srv/$HDBPP_INSTANCE
# [plant].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
SOURCES=${HDBPP_SOURCES:-$REPO/../shared/vendor/hdbpp}
CACHE_ROOT=${HDBPP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plantds/hdbpp}
JOBS=${HDBPP_JOBS:-2}
STATE=${PLANTDS_STATE:-$PWD/.state}/hdbpp
INSTANCE=${HDBPP_INSTANCE:-plant}
ES_DEVICE=${HDBPP_ES_DEVICE:-archiving/hdbpp/es-plant}
CM_DEVICE=${HDBPP_CM_DEVICE:-archiving/hdbpp/cm-plant}
PGBIN=/usr/lib/postgresql/15/bin
PG_USER=hdb_event_sub     # users.sql's accounts; their password guards a loopback-only server
PG_PASSWORD=hdbpp

# component  upstream commit  sha256 of the source tree (every file's sha256sum, sorted by path)
PINNED="
libhdbpp 0c981bd4c8d12c41a17b81b97548c92c6cddced6 2ca16b337993557a766788847ec86a5f7d3ebd507ade1f3a3ca100abdb8f356a
libhdbpp-timescale 702ee676e629f91973941530c013707b2bfdbfda c1f55b9b5024b317993226064fced13e2d331fe0631a8f3557bc307ef6decbcf
hdbpp-es dcc26f25603b71de484d4d4b7610aed43beef7a2 e6754c73144e3f30f3dc8ddfe46d4f49aa2b8ac486eedabb70acea774da426d9
hdbpp-cm 654a9bae97ab4cd4df4154577c20de2007217a7e b3d96bb4c8393e4b2799b4ad08124c941d310b9fe2377bd900515768826de970
"
COMPONENTS=(libhdbpp libhdbpp-timescale hdbpp-es hdbpp-cm)   # in build order
APT_BUILD=(cmake make g++ pkg-config libtango-dev libpqxx-dev libspdlog-dev libfmt-dev)
APT_RUN=(postgresql-15 postgresql-client-15 libpqxx-6.4 tango-db)

TOOL=hdbpp.sh
# shellcheck source=deploy/common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
say() { echo "$TOOL: $*"; }

# ------------------------------------------------------------------------------------ install
cmd_install() {
    local missing
    missing=$(dpkg-query -W -f='${Package} ${Status}\n' "${APT_BUILD[@]}" "${APT_RUN[@]}" 2>&1 \
              | grep -vc 'install ok installed' || true)
    if [ "$missing" = 0 ]; then say "build and run dependencies are already installed"; return 0; fi
    preseed_tango_db
    install_without_services "${APT_BUILD[@]}" "${APT_RUN[@]}"
}

# -------------------------------------------------------------------------------------- build
tree_hash() {  # tree_hash DIR: sha256 over every file's sha256, sorted by path
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
}

pinned() {  # pinned COMPONENT FIELD(2=commit, 3=tree hash)
    awk -v n="$1" -v f="$2" '$1 == n {print $f}' <<<"$PINNED"
}

fetch_sources() {  # fetch_sources DEST: unpack and verify the four source trees into DEST/<name>
    local dest=$1 n tarball
    for n in "${COMPONENTS[@]}"; do
        mkdir -p "$dest/$n"
        if [ -f "$SOURCES/$n.tar.gz" ]; then
            tar -xzf "$SOURCES/$n.tar.gz" -C "$dest/$n"
        else
            tarball=$dest/$n.download.tar.gz
            curl -fsSL --retry 3 -o "$tarball" \
                "https://github.com/tango-controls-hdbpp/$n/archive/$(pinned "$n" 2).tar.gz" \
                || die "no $SOURCES/$n.tar.gz and downloading $n failed"
            # GitHub's archives hold one top folder, <name>-<commit>/
            tar -xzf "$tarball" -C "$dest/$n" --strip-components=1
            rm -f "$tarball"
        fi
        [ "$(tree_hash "$dest/$n")" = "$(pinned "$n" 3)" ] \
            || die "$n: the sources do not match the pinned sha256 (commit $(pinned "$n" 2))"
    done
}

# --- build recipe (hashed into the cache key: editing it rebuilds) ---
patch_timescale() {  # build libhdbpp-timescale offline against Debian 12's packages
    local f=$1/CMakeLists.txt
    # Its git submodules (test frameworks, spdlog, libpqxx) are not in the tarball: use Debian's.
    sed -i \
      -e 's|^add_subdirectory(thirdparty/google/benchmark EXCLUDE_FROM_ALL)|# plantds: no benchmark|' \
      -e 's|^add_subdirectory(thirdparty/google/googletest/googletest EXCLUDE_FROM_ALL)|# plantds: no gtest|' \
      -e 's|^add_subdirectory(thirdparty/Catch2  EXCLUDE_FROM_ALL)|# plantds: no Catch2|' \
      -e 's|^add_subdirectory(thirdparty/spdlog  EXCLUDE_FROM_ALL)|find_package(spdlog REQUIRED)|' \
      -e 's|^set_property(TARGET spdlog PROPERTY POSITION_INDEPENDENT_CODE ON)|# plantds: Debian spdlog|' \
      -e 's|^find_package(libpqxx 6.4)|find_package(PkgConfig REQUIRED)\npkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx>=6.4 libpq)\nadd_library(pqxx_static INTERFACE)\ntarget_link_libraries(pqxx_static INTERFACE PkgConfig::PQXX)\nset(libpqxx_FOUND TRUE)|' \
      "$f"
    grep -q 'pkg_check_modules(PQXX' "$f" && grep -q '^find_package(spdlog REQUIRED)' "$f" \
        || die "patching $f failed (unexpected upstream CMakeLists.txt)"
}

build_one() {  # build_one SRC BUILD PREFIX NAME [CMAKE ARGS...]
    local src=$1 build=$2 prefix=$3 name=$4 t0; shift 4
    t0=$(date +%s)
    nice -n 10 cmake -S "$src/$name" -B "$build/$name" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_PREFIX_PATH="$prefix" "$@" \
        >"$build/$name.cmake.log" 2>&1 || { tail -30 "$build/$name.cmake.log"; die "cmake $name failed"; }
    nice -n 10 make -C "$build/$name" -j"$JOBS" >"$build/$name.make.log" 2>&1 \
        || { grep -E 'error|Error' "$build/$name.make.log" | head -30; die "make $name failed"; }
    make -C "$build/$name" install >"$build/$name.install.log" 2>&1 || die "make install $name failed"
    say "built $name in $(( $(date +%s) - t0 )) s"
}

build_all() {  # build_all SRC BUILD PREFIX
    local src=$1 build=$2 prefix=$3
    patch_timescale "$src/libhdbpp-timescale"
    say "building libhdbpp (about 5 s)"
    build_one "$src" "$build" "$prefix" libhdbpp
    say "building libhdbpp-timescale (about 90 s)"
    # fmt 9 (Debian) formats operator<< types only when asked to
    build_one "$src" "$build" "$prefix" libhdbpp-timescale -DCMAKE_CXX_FLAGS=-DFMT_DEPRECATED_OSTREAM=1
    say "building hdbpp-es (about 60 s)"
    build_one "$src" "$build" "$prefix" hdbpp-es   # backend "libhdbpp": dlopen()s libname at run time
    say "building hdbpp-cm (about 40 s)"
    build_one "$src" "$build" "$prefix" hdbpp-cm
    # start loads the archive schema from here: the sources are not needed once built
    mkdir -p "$prefix/share/hdbpp"
    cp "$src/libhdbpp-timescale/db-schema/schema.sql" "$src/libhdbpp-timescale/db-schema/users.sql" "$prefix/share/hdbpp/"
}
# --- end of build recipe ---

cache_key() {
    { awk '{print $1, $3}' <<<"$PINNED"
      sed -n '/^# --- build recipe/,/^# --- end of build recipe/p' "${BASH_SOURCE[0]}"
      dpkg-query -W libtango-dev libpqxx-dev libspdlog-dev libfmt-dev 2>/dev/null
    } | sha256sum | cut -c1-16
}

prefix_dir() { echo "$CACHE_ROOT/$(cache_key)"; }

built() { [ -x "$1/bin/hdb++es-srv" ] && [ -x "$1/bin/hdb++cm-srv" ] && [ -f "$1/share/hdbpp/schema.sql" ]; }

cmd_build() {
    local prefix t0
    command -v cmake >/dev/null && dpkg-query -W libtango-dev >/dev/null 2>&1 \
        || die "build dependencies missing: run '$0 install' first"
    prefix=$(prefix_dir)
    if built "$prefix"; then say "HDB++ is built (cache $prefix)"; return 0; fi
    mkdir -p "$CACHE_ROOT"
    # Two builds of the same key (two shells, two CI jobs) take turns; the second finds it built.
    exec 9>"$CACHE_ROOT/.lock"
    flock 9
    if built "$prefix"; then say "HDB++ is built (cache $prefix)"; return 0; fi
    t0=$(date +%s)
    say "building HDB++ into $prefix (about 190 s on 2 cores, once)"
    BUILD_WORK=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
    # a failed build leaves no half-installed prefix behind
    trap 'rm -rf "$BUILD_WORK"' EXIT
    local work=$BUILD_WORK
    fetch_sources "$work/src"
    mkdir -p "$work/build"
    build_all "$work/src" "$work/build" "$work/prefix"
    rm -rf "$prefix"
    mv "$work/prefix" "$prefix"
    # (the binaries' RPATH names the build folder: start sets LD_LIBRARY_PATH instead)
    echo "$PINNED" >"$prefix/SOURCES"
    say "HDB++ built in $(( $(date +%s) - t0 )) s ($(du -sh "$prefix" | cut -f1))"
}

# ------------------------------------------------------------------------------- PostgreSQL
as_pg() {  # run a PostgreSQL binary as the datadir's owner (postgres when we are root)
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_datadir() {  # the datadir's folder; as root, one that user postgres can enter
    if [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
        echo "$STATE/pg"
    else
        echo "/var/tmp/plantds-hdbpp/$(echo "$STATE" | sha256sum | cut -c1-16)"
    fi
}

psql_hdb() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$STATE/pg_port")" -U postgres "$@"; }

start_postgres() {
    local prefix=$1 dir port fresh=""
    [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 not found: run '$0 install' first"
    dir=$(pg_datadir)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir"; mkdir -p "$dir"
        [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir"
        # trust: the server listens on 127.0.0.1 only and holds test and demo data
        as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$STATE/initdb.log" 2>&1 \
            || die "initdb failed, see $STATE/initdb.log"
        fresh=1
    fi
    [ "$dir" = "$STATE/pg" ] || ln -sfn "$dir" "$STATE/pg"
    port=$(free_port)
    echo "$port" >"$STATE/pg_port"
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c shared_buffers=32MB" \
        start >/dev/null || die "PostgreSQL did not start, see $dir/postgres.log"
    [ -z "$fresh" ] || load_schema "$prefix"
}

load_schema() {
    # TimescaleDB is not packaged for Debian 12: the timescale schema on plain PostgreSQL (the
    # same tables, without hypertable partitioning).
    # The pinned library stores enum labels with every attribute configuration, a column the
    # schema.sql of the same commit lacks (upstream added it to the schema later).
    { sed -e '/CREATE EXTENSION IF NOT EXISTS timescaledb/d' -e '/create_hypertable(/d' "$1/share/hdbpp/schema.sql"
      echo "ALTER TABLE att_parameter ADD COLUMN IF NOT EXISTS enum_labels text[] NOT NULL DEFAULT ARRAY[]::text[];"
    } >"$STATE/schema-plain-postgres.sql"
    { psql_hdb -d postgres -f "$STATE/schema-plain-postgres.sql" \
      && psql_hdb -d hdb -f "$1/share/hdbpp/users.sql"; } >"$STATE/schema.log" 2>&1 \
        || die "loading the HDB++ schema failed, see $STATE/schema.log"
}

pg_data() {  # the datadir, resolved here: user postgres may not pass through the state folder
    echo "$(readlink -f "$STATE/pg")/data"
}

stop_postgres() {
    [ -f "$(pg_data)/postmaster.pid" ] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$(pg_data)" -m fast -w stop >/dev/null 2>&1 && echo "stopped PostgreSQL"
}

# --------------------------------------------------------------------------- Tango devices
libconfiguration() {  # the subscriber's (and manager's) LibConfiguration, comma separated
    local prefix=$1 port; port=$(cat "$STATE/pg_port")
    echo "libname=$prefix/lib/libhdb++timescale.so.2,connect_string=user=$PG_USER password=$PG_PASSWORD host=127.0.0.1 port=$port dbname=hdb,logging_level=error,log_file=true,log_file_name=$STATE/libhdbpp-timescale.log,log_console=false,log_syslog=false"
}

register_devices() {
    local prefix=$1 conf; conf=$(libconfiguration "$prefix")
    tango_admin --add-server "hdb++es-srv/$INSTANCE" HdbEventSubscriber "$ES_DEVICE" >/dev/null
    tango_admin --add-server "hdb++cm-srv/$INSTANCE" HdbConfigurationManager "$CM_DEVICE" >/dev/null
    # The subscriber's AttributeList is left alone: the subscriber writes it itself when an
    # attribute is added (plantds archive apply), and resumes from it at every start.
    tango_admin --add-property "$ES_DEVICE" LibConfiguration "$conf"
    tango_admin --add-property "$ES_DEVICE" SubscribeRetryPeriod 10
    tango_admin --add-property "$ES_DEVICE" StatisticsTimeWindow 60
    tango_admin --add-property "$ES_DEVICE" CheckPeriodicTimeoutDelay 5
    tango_admin --add-property "$ES_DEVICE" PollingThreadPeriod 3
    tango_admin --add-property "$CM_DEVICE" ArchiverList "$ES_DEVICE"
    tango_admin --add-property "$CM_DEVICE" MaxSearchSize 1000
    tango_admin --add-property "$CM_DEVICE" LibConfiguration "$conf"
}

start_server() {  # start_server TAG EXE DEVICE
    local tag=$1 exe=$2 device=$3 prefix=$4
    env LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$prefix/bin/$exe" "$INSTANCE" -ORBendPoint giop:tcp:127.0.0.1:0 \
        </dev/null >>"$STATE/$tag.log" 2>&1 &
    echo $! >"$STATE/$tag.pid"
    for _ in $(seq 300); do
        alive "$STATE/$tag.pid" || die "$exe exited during start-up, see $STATE/$tag.log"
        tango_admin --ping-device "$device" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "$device did not answer within 60 s, see $STATE/$tag.log"
}

cmd_start() {
    local prefix
    [ -n "${TANGO_HOST:-}" ] || die "export TANGO_HOST (the Tango DB the devices register in)"
    tango_admin --ping-database 5 >/dev/null 2>&1 || die "no Tango database answers at TANGO_HOST=$TANGO_HOST"
    prefix=$(prefix_dir)
    built "$prefix" || die "HDB++ is not built: run '$0 build' first"
    mkdir -p "$STATE"
    if alive "$STATE/es.pid" || alive "$STATE/cm.pid"; then die "already running; '$0 stop' first"; fi
    cmd_stop >/dev/null 2>&1 || true   # leftovers of a crashed run
    # A failure half-way leaves nothing behind.
    trap '[ $? -eq 0 ] || cmd_stop >/dev/null 2>&1' EXIT
    start_postgres "$prefix"
    register_devices "$prefix"
    start_server es hdb++es-srv "$ES_DEVICE" "$prefix"
    start_server cm hdb++cm-srv "$CM_DEVICE" "$prefix"
    echo "$TANGO_HOST" >"$STATE/tango_host"
    echo "HDBPP_ES_DEVICE=$ES_DEVICE"
    echo "HDBPP_CM_DEVICE=$CM_DEVICE"
    # the schema's read-only account, for readers (plantds history --db, the tests)
    echo "HDBPP_DB=postgresql://hdb_java_reporter:$PG_PASSWORD@127.0.0.1:$(cat "$STATE/pg_port")/hdb"
}

cmd_stop() {
    stop_pid "$STATE/cm.pid" hdb++cm-srv
    stop_pid "$STATE/es.pid" hdb++es-srv
    stop_postgres || true
    rm -f "$STATE/tango_host"
    if [ "${1:-}" = --purge ]; then
        ! [ -f "$(pg_data)/postmaster.pid" ] || die "PostgreSQL did not stop; data kept in $(pg_data)"
        rm -rf "$(readlink -f "$STATE/pg" 2>/dev/null || echo "$STATE/pg")" "$STATE"
    fi
}

cmd_restart_subscriber() {
    local prefix; prefix=$(prefix_dir)
    alive "$STATE/es.pid" || die "the event subscriber is not running"
    stop_pid "$STATE/es.pid" hdb++es-srv
    start_server es hdb++es-srv "$ES_DEVICE" "$prefix"
}

cmd_status() {
    local down=0 tag
    for tag in es cm; do
        if alive "$STATE/$tag.pid"; then echo "hdb++$tag-srv running (pid $(cat "$STATE/$tag.pid"))"
        else echo "hdb++$tag-srv not running"; down=1; fi
    done
    if [ -f "$STATE/pg_port" ] && as_pg "$PGBIN/pg_ctl" -D "$(pg_data)" status >/dev/null 2>&1; then
        echo "PostgreSQL running on 127.0.0.1:$(cat "$STATE/pg_port"), archive database hdb"
    else
        echo "PostgreSQL not running"; down=1
    fi
    return "$down"
}

case ${1:-} in
    install|build|status) "cmd_$1" ;;
    start) cmd_start ;;
    restart-subscriber) cmd_restart_subscriber ;;
    stop) shift; cmd_stop "$@" ;;
    prefix) cmd_build >&2; prefix_dir ;;
    *) echo "usage: $0 install | build | start | stop [--purge] | status | restart-subscriber | prefix" >&2; exit 2 ;;
esac
