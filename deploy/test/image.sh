#!/usr/bin/env bash
# The container image, tested for real (docs/deploy.md; run by .ci/run):
#   1. a Debian bookworm base image from the package archive (debootstrap --variant=minbase + podman import),
#      cached in $KLINE_PODMAN_CACHE (default ~/.cache/kline-podman) so later runs skip it;
#   2. deploy/container/Containerfile's `host` target built from the host's binary (KLINE_SERVER_BIN, else
#      $CARGO_TARGET_DIR/debug/kline-server), on that base;
#   3. the image's own settings: non-root user, HEALTHCHECK, the data volume;
#   4. an edge that cannot load its replica is unhealthy (the health check is /ready, not "the port answers");
#   5. a single node started on a named volume turns healthy; events POSTed to it come back over /ws as
#      the candles computed from them; SIGTERM stops it cleanly (exit 0, "store flushed" in its log);
#   6. a new container on the same volume turns healthy and serves the same history, and knows the events.
# Every wait polls for its condition with a deadline. Podman runs as root with runc, cgroupfs, host
# networking (loopback ports only) and a containers.conf holding `default_ulimits = []`, in a storage of
# its own under the cache directory; containers, volumes and the built image are removed at the end.
# Skipped with a message where podman, debootstrap or root are missing (a failure under CI=1).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${KLINE_PODMAN_CACHE:-$HOME/.cache/kline-podman}
target=${CARGO_TARGET_DIR:-$repo/target}
bin=${KLINE_SERVER_BIN:-$target/debug/kline-server}
# The base image's recipe: change the version when the recipe changes, and the cache is rebuilt.
base_version=bookworm-minbase-1
base_image=localhost/kline-base:$base_version
image=localhost/kline-server:image-test
started=$SECONDS

step() { printf '  [%3ds] %s\n' "$((SECONDS - started))" "$*"; }
fail() { echo "image test FAILED: $*" >&2; exit 1; }
# shellcheck source=deploy/test/lib.sh
source "$(dirname "$0")/lib.sh"
skip() {
    echo "image test SKIPPED: $*"
    if [ "${CI:-}" = 1 ]; then fail "under CI=1 the image test must run ($*)"; fi
    exit 0
}

command -v podman >/dev/null || skip "podman is not installed (apt-get install podman runc debootstrap)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt-get install debootstrap)"
[ "$(id -u)" = 0 ] || skip "podman and debootstrap run as root here"
[ -x "$bin" ] || fail "no kline-server binary at $bin (cargo build -p kline-server, or set KLINE_SERVER_BIN)"
python3 -c 'import websockets.asyncio.client' 2>/dev/null || fail "python3 with websockets is needed"

mkdir -p "$cache"
# One run at a time per cache (the storage and the base tarball are shared).
exec 9>"$cache/lock"
flock -w 900 9 || fail "another image test holds $cache/lock"

printf '[containers]\ndefault_ulimits = []\n' >"$cache/containers.conf"
export CONTAINERS_CONF=$cache/containers.conf
podman() {
    command podman --runtime runc --cgroup-manager cgroupfs \
        --root "$cache/storage" --runroot "$cache/run" "$@"
}

work=$(mktemp -d)
run_id=kline-image-test-$$
cleanup() {
    podman rm -f -v "$run_id-edge" "$run_id-1" "$run_id-2" >/dev/null 2>&1 || true
    podman volume rm -f "$run_id-data" >/dev/null 2>&1 || true
    podman rmi -f "$image" >/dev/null 2>&1 || true
    podman image prune -f >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- 1. the base image: debootstrap once, then the cached tarball.
debian_mirror() {
    local mirror
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -E '^(URIs:|deb )' | tr -s '[:blank:]' '\n' | grep -E '^https?://' |
        grep -v security | grep -E '/debian/?$' | head -n 1 || true)
    echo "${KLINE_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}"
}
tarball=$cache/$base_version.tar
if [ ! -s "$tarball" ]; then
    mirror=$(debian_mirror)
    step "debootstrap --variant=minbase bookworm from $mirror (cached afterwards in $tarball)"
    rootfs=$work/rootfs
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log"; fail "debootstrap"; }
    # What debian:bookworm-slim leaves out too: package lists and archives, documentation, locales.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*
    tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
fi
if ! podman image exists "$base_image"; then
    step "podman import $tarball"
    podman import --change 'CMD ["/bin/bash"]' "$tarball" "$base_image" >/dev/null 2>&1
fi

# --- 2. the image, from the host's binary.
ctx=$work/context
mkdir -p "$ctx/deploy/container" "$ctx/config"
cp "$repo/deploy/container/kline-healthcheck" "$ctx/deploy/container/"
cp "$repo/config/production.toml" "$ctx/config/"
# A copy, so a build running meanwhile cannot swap the binary under the test; without debug sections.
if command -v objcopy >/dev/null; then
    objcopy --strip-debug "$bin" "$ctx/kline-server"
else
    cp "$bin" "$ctx/kline-server"
fi
step "podman build --target host (binary: $bin, $(du -m "$ctx/kline-server" | cut -f1) MB stripped)"
podman build --format docker --network host --target host \
    --build-arg RUNTIME_IMAGE="$base_image" --build-arg KLINE_BINARY=kline-server \
    -f "$repo/deploy/container/Containerfile" -t "$image" "$ctx" >"$work/build.log" 2>&1 ||
    { tail -n 30 "$work/build.log"; fail "podman build"; }
size=$(podman image inspect --format '{{.Size}}' "$image")
step "image $image: $((size / 1000000)) MB"

# --- 3. what the image says about itself.
inspect() { podman image inspect --format "$1" "$image"; }
[ "$(inspect '{{.Config.User}}')" = kline:kline ] || fail "the image does not run as kline: $(inspect '{{.Config.User}}')"
inspect '{{json .Config.Healthcheck.Test}}' | grep -q kline-healthcheck || fail "no HEALTHCHECK in the image"
inspect '{{json .Config.Volumes}}' | grep -q '"/var/lib/kline"' || fail "/var/lib/kline is not a volume"

running() {
    [ "$(podman inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ] ||
        { podman logs "$1" 2>&1 | tail -n 20; fail "container $1 is not running"; }
}
healthy() {
    running "$1" && podman healthcheck run "$1" >/dev/null 2>&1 &&
        [ "$(podman inspect --format '{{.State.Health.Status}}' "$1")" = healthy ]
}
listening() { running "$1" && podman logs "$1" 2>&1 | grep -q 'kline-server listening'; }
# start NAME PORT [podman run options...] [-- server arguments...]
start() {
    local name=$1 port=$2
    shift 2
    local opts=() args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    [ $# -gt 0 ] && shift && args=("$@")
    podman run -d --name "$name" --network host \
        -e KLINE__SERVER__HOST=127.0.0.1 -e KLINE__SERVER__PORT="$port" -e KLINE__NODE__INTERNAL_ADDR=127.0.0.1:0 \
        "${opts[@]}" "$image" "${args[@]}" >/dev/null 2>>"$work/podman.log" ||
        { cat "$work/podman.log"; fail "podman run $name"; }
}

# --- 4. an edge that cannot load its replica (no Redis) serves, but is not healthy.
edge_port=$(free_port)
start "$run_id-edge" "$edge_port" -e KLINE__NODE__ROLE=edge -e KLINE__STREAM__REDIS_URL=redis://127.0.0.1:1/
wait_for 60 "the edge to listen" listening "$run_id-edge"
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$edge_port/ready")
[ "$status" = 503 ] || fail "an edge without its replica answered /ready with $status"
if podman healthcheck run "$run_id-edge" >/dev/null 2>&1; then
    fail "the health check passed on an edge that answers /ready with 503"
fi
podman rm -f -v "$run_id-edge" >/dev/null 2>&1
step "an edge without its replica: /ready 503, health check failing"

# --- 5. a single node on a named volume: healthy, events in, candles out over /ws, SIGTERM.
port=$(free_port)
token=image-test-$$
now=$(date +%s)
start_secs=$(((now / 60 - 60) * 60)) # an hour ago, on a minute boundary
podman volume create "$run_id-data" >/dev/null
node_opts=(-v "$run_id-data:/var/lib/kline" -e KLINE_INGEST_TOKEN="$token" -e KLINE__INGEST__ENABLED=true
    -e KLINE__SOURCE__SIMULATOR__ENABLED=false)
start "$run_id-1" "$port" "${node_opts[@]}"
wait_for 60 "the node to turn healthy" healthy "$run_id-1"
[ "$(podman exec "$run_id-1" id -u)" = 10001 ] || fail "the server does not run as uid 10001"
step "node healthy on 127.0.0.1:$port, as uid 10001"

python3 "$repo/deploy/test/candles.py" post "http://127.0.0.1:$port" "$token" "$start_secs" >/dev/null
python3 "$repo/deploy/test/candles.py" read "ws://127.0.0.1:$port/ws" "$start_secs" >"$work/before.json"
step "20 events POSTed; their s1 and m1 candles read back over /ws"

podman stop --time 30 "$run_id-1" >/dev/null 2>>"$work/podman.log"
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$run_id-1")
podman logs "$run_id-1" >"$work/node-1.log" 2>&1
[ "$exit_code" = 0 ] || { tail -n 20 "$work/node-1.log"; fail "exit code $exit_code after SIGTERM"; }
grep -q 'SIGTERM: shutting down' "$work/node-1.log" || fail "no 'SIGTERM: shutting down' in the log"
grep -q 'store flushed; bye' "$work/node-1.log" || fail "no 'store flushed; bye' in the log"
mountpoint=$(podman volume inspect --format '{{.Mountpoint}}' "$run_id-data")
owner=$(stat -c %u "$mountpoint/CURRENT")
[ "$owner" = 10001 ] || fail "the store in the volume belongs to uid $owner, not 10001"
podman rm "$run_id-1" >/dev/null 2>>"$work/podman.log"
step "SIGTERM: exit 0, store flushed; the store stays in the volume"

# --- 6. a new container on the same volume serves the same history.
start "$run_id-2" "$port" "${node_opts[@]}"
wait_for 60 "the restarted node to turn healthy" healthy "$run_id-2"
python3 "$repo/deploy/test/candles.py" read "ws://127.0.0.1:$port/ws" "$start_secs" >"$work/after.json"
cmp -s "$work/before.json" "$work/after.json" ||
    fail "history differs after the restart: $(cat "$work/before.json") vs $(cat "$work/after.json")"
python3 "$repo/deploy/test/candles.py" post "http://127.0.0.1:$port" "$token" "$start_secs" --duplicates >/dev/null
podman stop --time 30 "$run_id-2" >/dev/null 2>>"$work/podman.log"
step "restarted on the same volume: the same candles over /ws, the events known (20 duplicates)"

echo "image test: passed in $((SECONDS - started)) s (image $((size / 1000000)) MB)"
