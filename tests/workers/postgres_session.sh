#!/bin/sh
# A private PostgreSQL server for tests: runs `postgres` on a Unix socket in SOCKDIR and on 127.0.0.1:PORT
# (TLS with the self-signed certificate in DATADIR, or plain, as the client asks), as the
# postgres user when started as root (the server refuses to run as root). It prints "ready" once the
# server accepts connections. On stdin, "stop" stops it at once (SIGQUIT: an immediate shutdown, as a
# crash would) and prints "stopped"; "start" starts it again. When stdin closes, the server is stopped:
# the test process holds it open, so the server ends with that process however it ends.
# Usage: postgres_session.sh BINDIR DATADIR SOCKDIR PORT
set -u
bin=$1
data=$2
sock=$3
port=$4
as=""
if [ "$(id -u)" = 0 ]; then as="runuser -u postgres --"; fi

start() {
  $as "$bin/postgres" -D "$data" -k "$sock" -p "$port" -c listen_addresses=127.0.0.1 -c ssl=on -c max_connections=200 \
    >>"$data/server.log" 2>&1 &
  i=0
  until "$bin/pg_isready" -q -h "$sock" -p "$port"; do
    i=$((i + 1))
    if [ "$i" -gt 1200 ]; then echo "the server did not start: $(tail -n 5 "$data/server.log")" >&2; exit 1; fi
    sleep 0.1
  done
  # Kept here: the test process removes the data folder (and postmaster.pid) as it exits.
  pid=$(head -n 1 "$data/postmaster.pid")
  echo ready
}

pid=""
stop() {
  [ -n "$pid" ] || return 0
  kill -QUIT "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  pid=""
}

start
while read -r command; do
  case $command in
    stop) stop; echo stopped ;;
    start) start ;;
  esac
done
stop
