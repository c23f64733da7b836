#!/usr/bin/env bash
# The deployment files of deploy/, checked against the tools and the real server (run by .ci/run):
#   1. Prometheus: the scrape config with its rules (promtool check config), the rules (check rules) and
#      their unit tests (test rules);
#   2. Grafana: the dashboard is JSON, and every query in it is valid PromQL (promtool, as recording rules);
#   3. metric names: every kline_* name used by the rules and the dashboard is exported by a real writer
#      (with the Solana source on) or edge, read from their /metrics;
#   4. compose: every file it mounts exists, and each kline service's environment is a configuration the
#      server accepts (kline-server check-config with that environment);
#   5. systemd: every unit passes `systemd-analyze verify` without a message, in a scratch root holding the
#      units, the binary at their ExecStart path and systemd's own units; and each ExecStart's arguments
#      are accepted (check-config, with config/production.toml as /etc/kline/kline.toml).
# A part whose tool is missing is skipped with a message (a failure under CI=1).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
deploy=$repo/deploy
target=${CARGO_TARGET_DIR:-$repo/target}
bin=${KLINE_SERVER_BIN:-$target/debug/kline-server}
[ -x "$bin" ] || { echo "no kline-server binary at $bin (cargo build -p kline-server, or set KLINE_SERVER_BIN)"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "deploy check FAILED: $*" >&2; exit 1; }
# shellcheck source=deploy/test/lib.sh
source "$(dirname "$0")/lib.sh"
skip() {
    echo "  SKIPPED: $*"
    if [ "${CI:-}" = 1 ]; then fail "under CI=1 this check must run ($*)"; fi
}
ok() { echo "  ok: $*"; }
# The open-file limit of the units and the compose file, where this shell may set it (root).
with_nofile() { (ulimit -n 65536 2>/dev/null || true; "$@"); }

# --- 1. Prometheus.
if command -v promtool >/dev/null; then
    sed "s|/etc/prometheus/rules/|$deploy/prometheus/rules/|" "$deploy/prometheus/prometheus.yml" >"$work/prometheus.yml"
    promtool check config "$work/prometheus.yml" >"$work/promtool.log" 2>&1 || { cat "$work/promtool.log"; fail "promtool check config"; }
    grep -q 'SUCCESS: 1 rule files found' "$work/promtool.log" || { cat "$work/promtool.log"; fail "the scrape config finds no rule file"; }
    promtool check rules "$deploy"/prometheus/rules/*.yml >"$work/promtool.log" 2>&1 || { cat "$work/promtool.log"; fail "promtool check rules"; }
    promtool test rules "$deploy"/prometheus/tests/*.yml >"$work/promtool.log" 2>&1 || { cat "$work/promtool.log"; fail "promtool test rules"; }
    ok "prometheus.yml, rules and their tests (promtool)"
else
    skip "promtool is not installed (apt-get install prometheus)"
fi

# --- 2. Grafana: the dashboard's queries as recording rules, for promtool to parse.
python3 - "$deploy/grafana/dashboards/kline.json" "$work/dashboard.rules.yml" <<'EOF'
import json, sys
dashboard = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
assert exprs, "no queries in the dashboard"
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, expr in enumerate(exprs):
        expr = expr.replace("$__rate_interval", "5m").replace("$instance", ".*")
        out.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(expr)}\n")
EOF
if command -v promtool >/dev/null; then
    promtool check rules "$work/dashboard.rules.yml" >"$work/promtool.log" 2>&1 || { cat "$work/promtool.log"; fail "a dashboard query is not PromQL"; }
    ok "dashboard: JSON, $(grep -c record: "$work/dashboard.rules.yml") queries parse"
else
    ok "dashboard: JSON (queries not parsed without promtool)"
fi

# --- 3. Metric names against a real writer and edge, one after the other (no Redis needed: a node that
#        cannot reach it registers its metrics all the same, as the writer's Solana source towards a closed port).
# scrape_role NAME SERVER-ARGS...: starts the server, saves its /metrics as metrics-NAME.txt, stops it.
# A writer that never reached Redis waits out server.shutdown_timeout_secs for its publisher on SIGTERM:
# 1 s here instead of 10.
scrape_role() {
    local name=$1 port pid
    shift
    port=$(free_port)
    "$bin" --data-dir "$work/$name" --bind "127.0.0.1:$port" --set stream.redis_url='"redis://127.0.0.1:1/"' \
        --set node.internal_addr='"127.0.0.1:0"' \
        --set server.shutdown_timeout_secs=1 "$@" 2>"$work/$name.log" &
    pid=$!
    pids+=("$pid")
    scraped() {
        kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log"; fail "the $name exited"; }
        curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics-$name.txt"
    }
    wait_for 60 "the $name's /metrics" scraped
    kill "$pid"
    wait "$pid" || true
}
scrape_role writer --set node.role=writer --set source.solana.enabled=true \
    --set source.solana.ws_url='"ws://127.0.0.1:1"' --set source.solana.rpc_url='"http://127.0.0.1:1"'
scrape_role edge --set node.role=edge
# Samples (kline_x_total, kline_x_bucket) and families (kline_x, as `# TYPE` names them).
{ grep -hv '^#' "$work"/metrics-*.txt | sed 's/[{ ].*//'; sed -n 's/^# TYPE \([^ ]*\) .*/\1/p' "$work"/metrics-*.txt; } |
    sort -u >"$work/exported.txt"
cat "$deploy"/prometheus/rules/*.yml "$deploy/grafana/dashboards/kline.json" |
    grep -o 'kline_[a-z0-9_]*' | sort -u >"$work/used.txt"
unknown=$(comm -23 "$work/used.txt" "$work/exported.txt")
[ -z "$unknown" ] || fail "names used by the rules or the dashboard that no node exports: $unknown"
ok "metric names: the $(wc -l <"$work/used.txt") used are exported by a real writer or edge"

# --- 4. compose: mounted files exist; each kline service's environment is a valid configuration.
python3 - "$deploy/compose/compose.yaml" "$work/compose-env" <<'EOF'
import os, re, sys
import yaml
path, out = sys.argv[1], sys.argv[2]
here = os.path.dirname(path)
compose = yaml.safe_load(open(path))
def default(value):
    """${VAR:-default} -> default; ${VAR:?message} -> a placeholder (the operator must set it)."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "set-by-the-operator", value)
os.makedirs(out)
for name, service in compose["services"].items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            assert os.path.exists(os.path.join(here, source)), f"{name}: {source} does not exist"
    build = service.get("build")
    if build:
        context = os.path.join(here, build["context"])
        assert os.path.isfile(os.path.join(context, build["dockerfile"])), f"{name}: no {build['dockerfile']}"
    env = {k: default(v) for k, v in (service.get("environment") or {}).items()}
    if any(k.startswith("KLINE__") for k in env):
        with open(os.path.join(out, name), "w") as f:
            for k, v in env.items():
                f.write(f"{k}={v}\n")
EOF
for envfile in "$work"/compose-env/*; do
    service=$(basename "$envfile")
    mapfile -t vars <"$envfile"
    with_nofile env "${vars[@]}" "$bin" --data-dir "$work/compose-$service" check-config >"$work/check.log" 2>&1 ||
        { cat "$work/check.log"; fail "compose service $service: its environment is not a valid configuration"; }
done
ok "compose: mounts and build files exist; $(find "$work/compose-env" -type f | wc -l) kline services' environments pass check-config"

# --- 5. systemd units.
units=("$deploy"/systemd/*.service)
for unit in "${units[@]}"; do
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
    read -ra args <<<"${exec_start//%i/1}"
    args=("${args[@]//\/etc\/kline\/kline.toml/$repo/config/production.toml}")
    args=("${args[@]//%S/$work/state}")
    [ "${args[0]}" = /usr/local/bin/kline-server ] || fail "$unit: ExecStart runs ${args[0]}"
    with_nofile "$bin" "${args[@]:1}" check-config >"$work/check.log" 2>&1 ||
        { cat "$work/check.log"; fail "$(basename "$unit"): ExecStart's arguments are refused"; }
done
if command -v systemd-analyze >/dev/null; then
    root=$work/root
    mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
    cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
    ln "$bin" "$root/usr/local/bin/kline-server" 2>/dev/null || cp "$bin" "$root/usr/local/bin/kline-server"
    cp "${units[@]}" "$root/etc/systemd/system/"
    names=()
    for unit in "${units[@]}"; do
        name=$(basename "$unit")
        names+=("${name/@.service/@1.service}")
    done
    # verify exits 0 on unknown keys and bad values (it only warns): any message is a failure.
    if ! systemd-analyze --root="$root" verify "${names[@]}" >"$work/verify.log" 2>&1 || [ -s "$work/verify.log" ]; then
        cat "$work/verify.log"
        fail "systemd-analyze verify"
    fi
    ok "systemd: ${names[*]} pass systemd-analyze verify; their ExecStart arguments pass check-config"
else
    skip "systemd-analyze is not installed (apt-get install systemd): units not verified"
fi
echo "deploy check: passed"
