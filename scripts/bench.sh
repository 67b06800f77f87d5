#!/usr/bin/env bash
# Drives a local Parley server (release build, fresh data dir) with signed
# inbound webhooks over loopback and reports inbound messages/s and request
# latency, then counts the stored messages to prove none was lost.
#
#   scripts/bench.sh [MESSAGES] [CONVERSATIONS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES=${1:-100000}
CONVERSATIONS=${2:-5000}
CONNECTIONS=${3:-64}
PER_WEBHOOK=${PER_WEBHOOK:-1}
MAX_SECONDS=${MAX_SECONDS:-120}

cargo build --release --quiet --bin parley -p parley-functions --bin parley-loadgen -p parley-loadgen
BIN=target/release

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PORT=$(free_port)
DATA=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT

export PARLEY_HTTP_ADDR=127.0.0.1:$PORT PARLEY_DATA_DIR=$DATA RUST_LOG=${RUST_LOG:-warn}
"$BIN/parley" serve > "$DATA/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

TOKEN=$("$BIN/parley" token --tenant bench)
SECRET=bench-app-secret
curl -sf -X POST "http://127.0.0.1:$PORT/v1/numbers" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"phone_number_id\":\"100000000000001\",\"display_phone_number\":\"15550000001\",\"waba_id\":\"200000000000001\",\"access_token\":\"bench\",\"app_secret\":\"$SECRET\",\"verify_token\":\"bench\"}" >/dev/null

echo "bench: $MESSAGES messages, $CONVERSATIONS conversations, $CONNECTIONS connections, $PER_WEBHOOK per webhook" >&2
REPORT=$("$BIN/parley-loadgen" --url "http://127.0.0.1:$PORT/webhooks/whatsapp" --app-secret "$SECRET" \
  --phone-number-id 100000000000001 --display-phone-number 15550000001 --waba-id 200000000000001 \
  --messages "$MESSAGES" --conversations "$CONVERSATIONS" --connections "$CONNECTIONS" \
  --per-webhook "$PER_WEBHOOK" --max-seconds "$MAX_SECONDS" --json) || { echo "$REPORT"; echo "bench: load generator reported errors" >&2; exit 1; }

# Wait for the read models to catch up, then count.
for _ in $(seq 600); do
  STATS=$("$BIN/parley" stats --tenant bench)
  LAG=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(d["projection_lag"].values()))' "$STATS")
  [ "$LAG" = "0" ] && break
  sleep 0.2
done
python3 - "$REPORT" "$STATS" <<'PY'
import json, sys
r, s = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sent = r["messages_ok"]
print(f"inbound messages/s : {r['messages_per_second']:.0f}")
print(f"request latency    : p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.2f} ms")
print(f"messages accepted  : {sent} of {r['messages_sent']} in {r['seconds']:.1f} s, errors {r['errors']}")
print(f"messages stored    : {s['messages']} (event log head {s['event_log_head']})")
if s["messages"] != sent:
    print("LOST MESSAGES", file=sys.stderr); sys.exit(1)
PY

# Search over what was stored: every message says "message"; each has its
# own sequence number. Medians of repeated queries, first page (50 items).
search_ms() {
  local q=$1 times=()
  for _ in $(seq 21); do
    times+=("$(curl -sf -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" \
      "http://127.0.0.1:$PORT/v1/messages/search?q=$q")")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 11p | awk '{printf "%.2f", $1 * 1000}'
}
RARE=$((MESSAGES / 2))
echo "search, one rare word   : $(search_ms "$RARE") ms (median of 21)"
echo "search, one common word : $(search_ms message) ms"
echo "search, common + rare   : $(search_ms "message+$RARE") ms"
echo "search, no match        : $(search_ms "message+nomatch") ms"
