#!/bin/sh
# The e-commerce order flow, end to end, as a user would run it:
#   1. `mqkit run topology.yaml` starts the reliable proxy (spool, DLQ, four
#      consumer groups: email, inventory, billing, warehouse);
#   2. four services start, two workers each, every one a ReliableConsumer
#      in its own group, doing a small real job on files;
#   3. the order service publishes ORDERS order.created messages through the
#      ReliableProducer and waits until every service settled every order,
#      then schedules a reminder e-mail a day later (the proxy confirms it
#      and holds it: the email group shows 1 scheduled);
#   4. it prints what happened: processed, retried and dead-lettered per
#      service, where the invoices, packing slips and e-mails are, the DLQ
#      (`mqkit dlq ls`) and the command that replays it;
#   5. it reads the order log (a stream the audit group is bridged into)
#      from the beginning, as any later reader could.
# Every process it starts is stopped on exit, also on failure or Ctrl-C.
#
# usage: examples/ecommerce/run.sh [path/to/mqkit]
#   ORDERS=300   how many orders
#   WORK=DIR     where everything goes (default: a new /tmp/mqkit-ecommerce-*);
#                a DIR/topology.yaml there is used instead of the example's
set -eu
mqkit=${1:-build/cli/mqkit}
bin=$(cd "$(dirname "$mqkit")/../examples/ecommerce" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
orders=${ORDERS:-300}
work=${WORK:-$(mktemp -d /tmp/mqkit-ecommerce-XXXXXX)}
mkdir -p "$work"
[ -f "$work/topology.yaml" ] || cp "$here/topology.yaml" "$work/topology.yaml"
pids=""
cleanup() {
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== 1. the topology ($work/topology.yaml)"
"$mqkit" run --check "$work/topology.yaml"
"$mqkit" run "$work/topology.yaml" --quiet > "$work/run.out" 2> "$work/run.log" &
run_pid=$!
pids="$pids $run_pid"
for _ in $(seq 200); do [ -s "$work/run.out" ] && break; sleep 0.05; done
if ! [ -s "$work/run.out" ]; then
  echo "the topology did not start:" >&2
  cat "$work/run.log" >&2
  exit 1
fi
cat "$work/run.out"

echo
echo "== 2. four services, two workers each"
service_pids=""
for service in email inventory billing warehouse; do
  for _ in 1 2; do
    "$bin/mqkit_ecommerce_$service" "$work/topology.yaml" "$work/$service" 2>> "$work/$service.log" &
    service_pids="$service_pids $!"
  done
done
pids="$service_pids $pids"
echo "started email, inventory, billing, warehouse (pids$service_pids)"

echo
echo "== 3. the order service publishes $orders orders"
status=0
# The wait grows with the orders (a minute, plus a second per 25 orders:
# several times what a 2-core machine needs), so a large run is not cut off.
"$bin/mqkit_ecommerce_orders" "$work/topology.yaml" "$orders" --wait $((60 + orders / 25)) ||
  status=$?

echo
echo "== 4. where the work went"
count() { find "$1" -type f 2>/dev/null | wc -l; }
lines() { wc -l < "$1" 2>/dev/null || echo 0; }
echo "  invoices        $(count "$work/billing/invoices") files in $work/billing/invoices"
echo "  packing slips   $(count "$work/warehouse/slips") files in $work/warehouse/slips"
echo "  e-mails         $(count "$work/email/outbox") files in $work/email/outbox"
echo "  reservations    $(lines "$work/inventory/applied.log") lines in $work/inventory/applied.log"
echo "  (each service's applied.log: one line per order it applied, shared by its workers)"

echo
echo "== 5. the dead-letter spool"
"$mqkit" dlq ls "$work/data/dlq"
echo
echo "Fix the cause, then replay them (each goes back to the group it died in):"
front=$(sed -n 's/.*order-proxy (proxy) up,.* front \(tcp:[^ ]*\).*/\1/p' "$work/run.out" |
  sed 's/0\.0\.0\.0/127.0.0.1/')
echo "  $mqkit dlq replay $work/data/dlq --proxy ${front:-FRONT} [--group billing] [--dry-run]"

echo
echo "== 6. the order log: every order kept in a stream, replayable from any point"
log=$(sed -n 's/.*order-log (stream) up,.* back \(tcp:[^ ]*\).*/\1/p' "$work/run.out" |
  sed 's/0\.0\.0\.0/127.0.0.1/')
if timeout $((60 + orders / 100)) "$mqkit" consume --stream "$log" --from earliest --count "$orders" --json \
    > "$work/order-log.json"; then
  echo "  orders in the order log: $(wc -l < "$work/order-log.json") (the first, as --json prints it:)"
  head -1 "$work/order-log.json" | cut -c1-160
  echo "  read it again any time, alone or as a named reader that keeps its position:"
  echo "  $mqkit consume --stream $log --from -1h [--name analytics] [--count N]"
else
  echo "the order log could not be read back" >&2
  status=1
fi

# Stop the services first (they hand back what they hold), then the proxy.
for pid in $service_pids; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in $service_pids; do wait "$pid" || status=1; done
kill -TERM "$run_pid"
wait "$run_pid" || status=1
pids=""
echo
if [ "$status" -eq 0 ]; then
  echo "done: every process stopped; the files are in $work"
else
  echo "failed (status $status); logs are in $work" >&2
fi
exit "$status"
