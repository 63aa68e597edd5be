#!/usr/bin/env bash
# Oracle MySQL for the mysql lane. Production is MySQL; the machine only has MariaDB. Debian's unstable
# archive carries mysql-server-core (9.x LTS), so a minimal sid chroot holds it: built once and cached
# (about 1.5 GB), then mysqld runs from it on 127.0.0.1:3307 with its data directory inside the chroot.
#
#   bash scripts/ci/mysql.sh start   build the chroot when missing, start mysqld, wait until it answers
#   bash scripts/ci/mysql.sh stop    stop that mysqld
#   bash scripts/ci/mysql.sh status  exit 0 when it answers
#
# Needs root (debootstrap, chroot). MYSQL_CHROOT and MYSQL_PORT override the defaults.
set -euo pipefail

root_dir=${MYSQL_CHROOT:-/var/cache/md-ci/mysql-sid}
port=${MYSQL_PORT:-3307}
datadir=/var/lib/mysql-ci
pidfile=/run/mysqld-ci/mysqld.pid

# The machine's own Debian mirror, so the chroot comes from where this machine's packages come from.
mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

build() {
  if [ -x "$root_dir/usr/sbin/mysqld" ]; then return 0; fi
  local m
  m=$(mirror)
  echo "mysql: building the sid chroot in $root_dir from $m (once; a few minutes)"
  rm -rf "$root_dir.partial"
  debootstrap --variant=minbase sid "$root_dir.partial" "$m" >/dev/null
  # A snapshot mirror's Release file may look expired; the packages are still the signed ones.
  chroot "$root_dir.partial" apt-get -o Acquire::Check-Valid-Until=false update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root_dir.partial" apt-get -o Acquire::Check-Valid-Until=false \
    install -y -qq --no-install-recommends mysql-server-core mysql-client-core >/dev/null ||
    DEBIAN_FRONTEND=noninteractive chroot "$root_dir.partial" apt-get -o Acquire::Check-Valid-Until=false \
      install -y -qq --no-install-recommends mysql-server-core >/dev/null
  chroot "$root_dir.partial" apt-get clean
  mv "$root_dir.partial" "$root_dir"
}

ping_mysql() {
  node -e '
    const net = require("node:net");
    // A MySQL server greets first: any bytes back on the port mean it is accepting connections.
    const s = net.connect(Number(process.argv[1]), "127.0.0.1");
    s.setTimeout(2000, () => process.exit(1));
    s.once("data", () => process.exit(0));
    s.once("error", () => process.exit(1));
  ' "$port"
}

start() {
  build
  if ping_mysql; then echo "mysql: already answering on 127.0.0.1:$port"; return 0; fi
  mkdir -p "$root_dir/run/mysqld-ci"
  if [ ! -d "$root_dir$datadir/mysql" ]; then
    rm -rf "$root_dir$datadir"
    chroot "$root_dir" mysqld --no-defaults --initialize-insecure --user=root --datadir="$datadir" \
      >"$root_dir/var/log/mysqld-ci-init.log" 2>&1
  fi
  # No --explain-format: the server keeps MySQL 9's default (TREE), as production does, so a test that
  # reads EXPLAIN's columns without asking FORMAT=TRADITIONAL fails here instead of in production.
  chroot "$root_dir" mysqld --no-defaults --user=root --datadir="$datadir" --pid-file="$pidfile" \
    --bind-address=127.0.0.1 --port="$port" --mysqlx=OFF --socket=/run/mysqld-ci/mysqld.sock \
    --secure-file-priv= \
    --innodb-buffer-pool-size=256M --log-error=/var/log/mysqld-ci.err </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 90); do
    if ping_mysql; then
      echo "mysql: $(mysqld_version) answering on 127.0.0.1:$port; stop it with: bash scripts/ci/mysql.sh stop"
      return 0
    fi
    sleep 1
  done
  echo "mysql: mysqld did not answer on 127.0.0.1:$port within 90 s; log: $root_dir/var/log/mysqld-ci.err"
  tail -n 20 "$root_dir/var/log/mysqld-ci.err" 2>/dev/null || true
  return 1
}

mysqld_version() { chroot "$root_dir" mysqld --version 2>/dev/null | grep -oE 'Ver [^ ]+' | head -n1; }

stop() {
  local pid
  pid=$(cat "$root_dir$pidfile" 2>/dev/null || true)
  if [ -z "$pid" ]; then echo "mysql: not running"; return 0; fi
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { echo "mysql: stopped"; return 0; }; sleep 1; done
  echo "mysql: mysqld $pid still running after 60 s"
  return 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) ping_mysql ;;
  build) build ;;
  *) echo "usage: $0 start|stop|status|build" >&2; exit 2 ;;
esac
