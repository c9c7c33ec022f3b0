#!/bin/sh
# A private Secret Service for tests: starts a D-Bus session bus and an unlocked gnome-keyring on
# it, prints "address=<bus address>", and stops both as soon as its standard input closes. The test
# process holds that input open, so the daemons end with it however it ends (even on SIGKILL,
# or under a runtime whose exit handlers do not run).
set -eu
dir=$1
dbus-daemon --session --nofork --print-address=1 >"$dir/bus.address" 2>/dev/null &
bus=$!
i=0
until [ -s "$dir/bus.address" ]; do
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then echo "dbus-daemon printed no address" >&2; kill "$bus"; exit 1; fi
  sleep 0.05
done
address=$(head -n 1 "$dir/bus.address")
printf 'palyra-test-keyring-password' |
  DBUS_SESSION_BUS_ADDRESS=$address gnome-keyring-daemon --unlock --components=secrets --foreground \
    >/dev/null 2>&1 &
keyring=$!
echo "$bus $keyring" >"$dir/pids"
echo "address=$address"
cat >/dev/null || true
kill "$keyring" "$bus" 2>/dev/null || true
wait 2>/dev/null || true
