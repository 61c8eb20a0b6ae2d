#!/bin/sh
# A live demo of mqkit through its CLI: a work queue (streamer) with two
# workers, then a fan-out (forwarder) to two subscribers. Every process it
# starts is stopped on exit, also on failure or Ctrl-C.
#
# usage: examples/demo.sh [path/to/mqkit]
set -eu
mqkit=${1:-build/cli/mqkit}
work=$(mktemp -d /tmp/mqkit-demo-XXXXXX)
pids=""
cleanup() {
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Starts a device and waits for its "up" line; sets in_ep, out_ep, stats_ep.
start_device() {
  "$mqkit" "$1" --in 'tcp://127.0.0.1:*' --out 'tcp://127.0.0.1:*' --stats 'tcp://127.0.0.1:*' \
    > "$work/$1.up" 2> "$work/$1.log" &
  pids="$pids $!"
  for _ in $(seq 100); do [ -s "$work/$1.up" ] && break; sleep 0.05; done
  cat "$work/$1.up"
  in_ep=$(awk '{print $5}' "$work/$1.up")
  out_ep=$(awk '{print $7}' "$work/$1.up")
  stats_ep=$(awk '{print $9}' "$work/$1.up")
}

wait_lines() {  # wait_lines COUNT FILE...: until the files hold COUNT lines in all
  want=$1; shift
  for _ in $(seq 200); do
    [ "$(cat "$@" | wc -l)" -ge "$want" ] && return 0
    sleep 0.05
  done
  echo "demo: timed out waiting for $want lines" >&2
  return 1
}

echo "== Work queue: 1 producer -> streamer -> 2 workers; each job goes to one worker"
start_device streamer
for w in 1 2; do
  "$mqkit" consume --from "$out_ep" --exec "echo \"  worker $w did: \$(cat) (id \$MQKIT_ID)\"" > "$work/worker$w" &
  pids="$pids $!"
done
sleep 0.3  # let both workers connect, so the jobs are shared
seq 1 10 | sed 's/^/resize image-/' | "$mqkit" send --to "$in_ep" --topic jobs.resize
wait_lines 10 "$work/worker1" "$work/worker2"
cat "$work/worker1" "$work/worker2"
"$mqkit" stat "$stats_ep"

echo
echo "== Fan-out: 1 publisher -> forwarder -> 2 subscribers; each gets every order"
start_device forwarder
for s in email billing; do
  "$mqkit" consume --sub --from "$out_ep" --topic order. --json > "$work/$s" &
  pids="$pids $!"
done
for _ in $(seq 100); do  # both subscriptions have reached the forwarder
  "$mqkit" stat "$stats_ep" --json | grep -q '"subscriptions":2' && break
  sleep 0.05
done
printf 'order 1001 for alice\norder 1002 for bob\norder 1003 for carol\n' |
  "$mqkit" send --pub --to "$in_ep" --topic order.created
wait_lines 6 "$work/email" "$work/billing"
for s in email billing; do
  echo "-- the $s subscriber got:"
  sed 's/^/  /' "$work/$s"
done
"$mqkit" stat "$stats_ep"
echo
echo "Demo done: every job reached exactly one worker; every order reached both subscribers."
