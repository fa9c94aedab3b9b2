#!/usr/bin/env bash
# A local three-replica trustgate with one Redis, on Docker alone (no
# compose plugin, no registry: both images are built here).
#
#   deploy/local/up.sh        # build, then start (or restart) everything
#   deploy/local/down.sh      # stop and remove it (keys and Redis data kept
#                             # unless --purge)
#
# Replicas answer on http://127.0.0.1:8081, :8082 and :8083 (loopback of
# this host only), share the nonce and token keys (generated once into a
# Docker volume) and Redis (AOF persistence, in a volume; not published).
# Reference values: deploy/local/reference-values.yaml, mounted read-only
# and reloaded when it changes.
#
# Environment: TRUSTGATE_LOCAL_PROJECT (default trustgate-local) names the
# network, containers and volumes; TRUSTGATE_LOCAL_PORT (default 8081) is
# the first published port; TRUSTGATE_IMAGE (default trustgate:dev) the
# verifier image (built with scripts/image unless TRUSTGATE_LOCAL_NO_BUILD
# is set); TRUSTGATE_LOCAL_REPLICAS (default 3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
p=${TRUSTGATE_LOCAL_PROJECT:-trustgate-local}
port=${TRUSTGATE_LOCAL_PORT:-8081}
img=${TRUSTGATE_IMAGE:-trustgate:dev}
replicas=${TRUSTGATE_LOCAL_REPLICAS:-3}
redis_img=trustgate-redis:local

need() { command -v "$1" >/dev/null || { echo "up.sh: $1 is needed ($2)" >&2; exit 2; }; }
need docker "Docker Engine"
need redis-server "the host's redis-server is copied into the Redis image: apt-get install redis-server"
need openssl "generates the token key"

if [ -z "${TRUSTGATE_LOCAL_NO_BUILD:-}" ]; then
  "$root/scripts/image" "$img" >/dev/null
fi

# Redis image: the host's redis-server and the libraries it links, FROM
# scratch (nothing to pull).
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

docker network inspect "$p" >/dev/null 2>&1 || docker network create "$p" >/dev/null

# Keys, once: a volume holding nonce.key, token.pem and launch.key, owned by the
# verifier's user (65532), mode 0400. Docker fills a new volume from the
# image directory it is mounted over, so a throw-away image that holds the
# keys (built with COPY --chown, no root needed on the host) fills it, and
# is removed again.
if ! docker volume inspect "$p-keys" >/dev/null 2>&1; then
  kctx=$(mktemp -d)
  mkdir -p "$kctx/keys"
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$kctx/keys/nonce.key"
  openssl ecparam -name prime256v1 -genkey -noout -out "$kctx/keys/token.pem" 2>/dev/null
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$kctx/keys/launch.key"
  chmod 0400 "$kctx/keys/nonce.key" "$kctx/keys/token.pem" "$kctx/keys/launch.key"
  printf 'FROM %s\nCOPY --chown=65532:65532 keys/ /etc/trustgate/keys/\n' "$img" > "$kctx/Dockerfile"
  docker build -q -t "$p-keys:once" "$kctx" >/dev/null 2>&1
  rm -rf "$kctx"
  docker volume create "$p-keys" >/dev/null
  docker run --rm --network none -v "$p-keys:/etc/trustgate/keys" "$p-keys:once" policy --help >/dev/null 2>&1 || true
  docker rmi "$p-keys:once" >/dev/null
fi

docker rm -f "$p-redis" >/dev/null 2>&1 || true
docker run -d --name "$p-redis" --network "$p" --network-alias redis \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  -v "$p-redis:/data" --restart unless-stopped "$redis_img" >/dev/null

for i in $(seq 1 "$replicas"); do
  docker rm -f "$p-$i" >/dev/null 2>&1 || true
  docker run -d --name "$p-$i" --network "$p" \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -p "127.0.0.1:$((port + i - 1)):8080" \
    -v "$p-keys:/etc/trustgate/keys:ro" \
    -v "$here/reference-values.yaml:/etc/trustgate/reference-values.yaml:ro" \
    -v "$p-cache-$i:/var/cache/trustgate" \
    -v "$p-state-$i:/var/lib/trustgate" \
    --restart unless-stopped "$img" \
    serve --listen 0.0.0.0:8080 --redis redis://redis:6379/0 \
    --nonce-key-file /etc/trustgate/keys/nonce.key --token-key-file /etc/trustgate/keys/token.pem \
    --launch-key-file /etc/trustgate/keys/launch.key \
    --reference-values /etc/trustgate/reference-values.yaml --state-dir /var/lib/trustgate >/dev/null
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
