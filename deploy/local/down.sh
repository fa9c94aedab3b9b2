#!/usr/bin/env bash
# Stops and removes what up.sh started. --purge also removes the keys and
# the Redis data (volumes).
set -euo pipefail
p=${TRUSTGATE_LOCAL_PROJECT:-trustgate-local}
for c in $(docker ps -aq --filter "name=^$p-"); do docker rm -f "$c" >/dev/null; done
docker network rm "$p" >/dev/null 2>&1 || true
if [ "${1:-}" = --purge ]; then
  for v in $(docker volume ls -q --filter "name=^$p-"); do docker volume rm "$v" >/dev/null; done
fi
