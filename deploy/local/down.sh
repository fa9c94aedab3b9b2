#!/usr/bin/env bash
# Stops and removes what up.sh started (containers, the network). --purge
# also removes the keys, the Redis data and the resources (volumes) and the
# images up.sh built: the project's Redis image and, unless
# TRUSTGATE_LOCAL_NO_BUILD is set (up.sh did not build it then), the
# verifier image TRUSTGATE_IMAGE (default trustgate:dev).
set -euo pipefail
p=${TRUSTGATE_LOCAL_PROJECT:-trustgate-local}
for c in $(docker ps -aq --filter "name=^$p-"); do docker rm -f -v "$c" >/dev/null; done
docker network rm "$p" >/dev/null 2>&1 || true
if [ "${1:-}" = --purge ]; then
  for v in $(docker volume ls -q --filter "name=^$p-"); do docker volume rm "$v" >/dev/null; done
  docker rmi "$p-redis:local" >/dev/null 2>&1 || true
  if [ -z "${TRUSTGATE_LOCAL_NO_BUILD:-}" ]; then
    docker rmi "${TRUSTGATE_IMAGE:-trustgate:dev}" >/dev/null 2>&1 || true
  fi
fi
