#!/usr/bin/env bash
# Property-based tests of `mm serve` from its own /openapi.json (schemathesis, from PyPI): a bounded number of
# generated requests per operation, against a real `mm serve` over the fake hub (with searchable repos) and a fake
# Ollama. Fails on any 5xx and on any answer that breaks the document's schemas.
# Usage: tests/api/schemathesis.sh [MAX_EXAMPLES]   (needs target/debug/{mm,fake-hub} and target/py-venv)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
examples=${1:-25}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$ROOT/target/debug/fake-hub" --files 1 --file-mb 1 --discover --ollama >"$work/hub.out" &
pids+=($!)
for _ in $(seq 100); do [ "$(wc -l <"$work/hub.out")" -ge 2 ] && break; sleep 0.1; done
endpoint=$(sed -n 1p "$work/hub.out")
ollama=$(sed -n 2p "$work/hub.out" | cut -d' ' -f2)

# A home of its own: nothing of this machine's settings, cache or keyring.
env -i PATH="$PATH" HOME="$work/home" XDG_DATA_HOME="$work/home/data" XDG_CONFIG_HOME="$work/home/config" \
  HF_HUB_CACHE="$work/home/cache" HF_ENDPOINT="$endpoint" OLLAMA_HOST="$ollama" MM_KEYRING=0 \
  MM_LLAMA_CPP_RELEASES="$endpoint/repos/ggml-org/llama.cpp/releases" \
  "$ROOT/target/debug/mm" serve --listen 127.0.0.1:0 --json >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/serve.out" ] && break; sleep 0.1; done
url=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$work/serve.out")
[ -n "$url" ] || { cat "$work/serve.err" >&2; echo "mm serve did not start" >&2; exit 1; }

# Deterministic: the same examples every run, so a failure reproduces. Run from the scratch folder, where it
# keeps its cache.
cd "$work"
"$ROOT/target/py-venv/bin/schemathesis" run "$url/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "$examples" --generation-deterministic --phases examples,coverage,fuzzing \
  --exclude-path /mm/v1/imports --exclude-path /mm/v1/storage/clean --exclude-path /mm/v1/events \
  --suppress-health-check filter_too_much --request-timeout 30 --workers 2 --no-color
