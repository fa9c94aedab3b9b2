#!/usr/bin/env bash
# A local three-replica trustgate with one Redis, on Docker alone (no
# compose plugin, no registry: both images are built here).
#
#   deploy/local/up.sh        # build, then start (or restart) everything
#   deploy/local/up.sh --dev  # the same, trusting the simulator (see below)
#   deploy/local/down.sh      # stop and remove it (keys and Redis data kept
#                             # unless --purge; --purge also removes the
#                             # images up.sh built)
#
# Replicas answer on http://127.0.0.1:8081, :8082 and :8083 (loopback of
# this host only), share the nonce and token keys (generated once into a
# Docker volume) and Redis (AOF persistence, in a volume; not published).
# Reference values: deploy/local/reference-values.yaml, mounted read-only
# and reloaded when it changes.
#
# --dev: the replicas serve --dev-simulator, so that `trustgate-agent
# attest --simulate` and `trustgate bench` attest to them end to end. A
# dev-simulator verifier listens on loopback only, so the replicas and Redis
# share the host's network (--network host) and listen on 127.0.0.1 (Redis
# on TRUSTGATE_LOCAL_REDIS_PORT, default the first port + 1000). They
# approve the simulator's builds (deploy/local/reference-values-dev.yaml)
# and release one resource, db-password (random, in a volume). Never
# expose them: their tokens are marked dev_simulator.
#
# Environment: TRUSTGATE_LOCAL_PROJECT (default trustgate-local) names the
# network, containers, volumes and the Redis image; TRUSTGATE_LOCAL_PORT
# (default 8081) is the first published port; TRUSTGATE_IMAGE (default
# trustgate:dev) the verifier image (built with scripts/image unless
# TRUSTGATE_LOCAL_NO_BUILD is set); TRUSTGATE_LOCAL_REPLICAS (default 3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
p=${TRUSTGATE_LOCAL_PROJECT:-trustgate-local}
port=${TRUSTGATE_LOCAL_PORT:-8081}
img=${TRUSTGATE_IMAGE:-trustgate:dev}
replicas=${TRUSTGATE_LOCAL_REPLICAS:-3}
redis_img=$p-redis:local # per project: two projects never share (or remove) one
dev=
case "${1:-}" in
  --dev) dev=1 ;;
  "") ;;
  *) echo "usage: deploy/local/up.sh [--dev]" >&2; exit 2 ;;
esac
redis_port=${TRUSTGATE_LOCAL_REDIS_PORT:-$((port + 1000))}
step() { echo "up.sh: $*" >&2; }

need() { command -v "$1" >/dev/null || { echo "up.sh: $1 is needed ($2)" >&2; exit 2; }; }
need docker "Docker Engine"
need redis-server "the host's redis-server is copied into the Redis image: apt-get install redis-server"
need openssl "generates the token key"

if [ -z "${TRUSTGATE_LOCAL_NO_BUILD:-}" ]; then
  step "building the verifier image $img (scripts/image; the first build compiles for minutes)"
  "$root/scripts/image" "$img" >/dev/null
fi

# Redis image: the host's redis-server and the libraries it links, FROM
# scratch (nothing to pull).
step "building the Redis image $redis_img from the host's redis-server"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/bin" "$ctx/data"
cp "$(command -v redis-server)" "$ctx/rootfs/usr/bin/redis-server"
for lib in $(ldd "$(command -v redis-server)" | grep -o '/[^ ]*'); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
cp "$here/redis.Dockerfile" "$ctx/Dockerfile"
docker build -q -t "$redis_img" "$ctx" >/dev/null 2>&1 || docker build -t "$redis_img" "$ctx"

if [ -z "$dev" ]; then
  docker network inspect "$p" >/dev/null 2>&1 || docker network create "$p" >/dev/null
fi

# fill_volume VOLUME DIR SRC: a new volume holding SRC/files/$(basename
# DIR) (mode 0700, its files 0400) at DIR, owned by the verifier's user
# (65532). Docker fills a new volume from the image directory it is mounted
# over, mode included, so a throw-away image that holds the files (built
# with COPY --chown, no root needed on the host) fills it, and is removed
# again.
fill_volume() {
  local vol=$1 dir=$2 src=$3
  printf 'FROM %s\nCOPY --chown=65532:65532 files/ %s/\n' "$img" "$(dirname "$dir")" > "$src/Dockerfile"
  docker build -q -t "$vol:once" "$src" >/dev/null 2>&1
  docker volume create "$vol" >/dev/null
  docker run --rm --network none -v "$vol:$dir" "$vol:once" --version >/dev/null 2>&1 || true
  docker rmi "$vol:once" >/dev/null
  rm -rf "$src"
}

# Keys, once: nonce.key, token.pem and launch.key, mode 0400.
if ! docker volume inspect "$p-keys" >/dev/null 2>&1; then
  step "generating the shared keys into the volume $p-keys"
  kctx=$(mktemp -d)
  mkdir -p -m 0700 "$kctx/files/keys"
  k=$kctx/files/keys
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$k/nonce.key"
  openssl ecparam -name prime256v1 -genkey -noout -out "$k/token.pem" 2>/dev/null
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$k/launch.key"
  chmod 0400 "$k/nonce.key" "$k/token.pem" "$k/launch.key"
  fill_volume "$p-keys" /etc/trustgate/keys "$kctx"
fi
# --dev: one resource to release, once.
if [ -n "$dev" ] && ! docker volume inspect "$p-resources" >/dev/null 2>&1; then
  step "writing the resource db-password into the volume $p-resources"
  rctx=$(mktemp -d)
  mkdir -p -m 0700 "$rctx/files/resources"
  head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$rctx/files/resources/db-password"
  chmod 0400 "$rctx/files/resources/db-password"
  fill_volume "$p-resources" /etc/trustgate/resources "$rctx"
fi

step "starting Redis and $replicas replicas${dev:+ (--dev: trusting the simulator, on this host loopback)}"
docker rm -f "$p-redis" >/dev/null 2>&1 || true
if [ -n "$dev" ]; then
  docker run -d --name "$p-redis" --network host \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -v "$p-redis:/data" --restart unless-stopped "$redis_img" \
    --bind 127.0.0.1 --port "$redis_port" --protected-mode no --dir /data \
    --appendonly yes --appendfsync always --save "" >/dev/null
else
  docker run -d --name "$p-redis" --network "$p" --network-alias redis \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -v "$p-redis:/data" --restart unless-stopped "$redis_img" >/dev/null
fi

for i in $(seq 1 "$replicas"); do
  docker rm -f "$p-$i" >/dev/null 2>&1 || true
  common=(--read-only --cap-drop ALL --security-opt no-new-privileges
    -v "$p-keys:/etc/trustgate/keys:ro" -v "$p-cache-$i:/var/cache/trustgate" -v "$p-state-$i:/var/lib/trustgate" --restart unless-stopped)
  keys=(--nonce-key-file /etc/trustgate/keys/nonce.key --token-key-file /etc/trustgate/keys/token.pem
    --launch-key-file /etc/trustgate/keys/launch.key --state-dir /var/lib/trustgate)
  if [ -n "$dev" ]; then
    docker run -d --name "$p-$i" --network host "${common[@]}" \
      -v "$here/reference-values-dev.yaml:/etc/trustgate/reference-values.yaml:ro" \
      -v "$p-resources:/etc/trustgate/resources:ro" \
      "$img" serve --listen "127.0.0.1:$((port + i - 1))" --dev-simulator --offline \
      --redis "redis://127.0.0.1:$redis_port/0" "${keys[@]}" \
      --reference-values /etc/trustgate/reference-values.yaml --resources /etc/trustgate/resources >/dev/null
  else
    docker run -d --name "$p-$i" --network "$p" "${common[@]}" \
      -p "127.0.0.1:$((port + i - 1)):8080" \
      -v "$here/reference-values.yaml:/etc/trustgate/reference-values.yaml:ro" \
      "$img" serve --listen 0.0.0.0:8080 --redis redis://redis:6379/0 "${keys[@]}" \
      --reference-values /etc/trustgate/reference-values.yaml >/dev/null
  fi
done

for i in $(seq 1 "$replicas"); do
  url="http://127.0.0.1:$((port + i - 1))"
  ok=
  for _ in $(seq 1 60); do
    if [ "$(docker inspect -f '{{.State.Running}}' "$p-$i")" != true ]; then break; fi
    if command -v curl >/dev/null; then
      curl -fsS -o /dev/null "$url/readyz" 2>/dev/null && { ok=1; break; }
    elif (exec 3<>"/dev/tcp/127.0.0.1/$((port + i - 1))") 2>/dev/null; then
      ok=1; break
    fi
    sleep 0.5
  done
  if [ -z "$ok" ]; then
    echo "up.sh: replica $i is not ready; its log:" >&2
    docker logs "$p-$i" >&2 || true
    exit 1
  fi
  echo "$p-$i $url"
done
if [ -n "$dev" ]; then
  step "try: trustgate-agent attest --verifier http://127.0.0.1:$port --simulate --resource db-password --out ./out"
  step "     trustgate bench --verifier http://127.0.0.1:$port --verifier http://127.0.0.1:$((port + 1)) -n 2000"
fi
