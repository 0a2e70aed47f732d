#!/usr/bin/env bash
# Print the local registry's configuration (docker-registry, distribution 2.x)
# for scripts/provision.sh; tests/test_provision.py reads it too.
#
#   PIPELINES_REGISTRY_ADDR    host:port to listen on (default 127.0.0.1:5000);
#                              a loopback address only: the registry has no
#                              authentication and no TLS, so nothing beyond this
#                              host may reach it.
#   PIPELINES_REGISTRY_DELETE  1: allow DELETE of manifests and blobs (the test
#                              suite removes signatures it made). Otherwise a
#                              DELETE is answered 405 UNSUPPORTED.
#   PIPELINES_REGISTRY_ROOT    where the images are stored (default
#                              /var/lib/pipelines/registry).
set -euo pipefail

addr=${PIPELINES_REGISTRY_ADDR:-127.0.0.1:5000}
root=${PIPELINES_REGISTRY_ROOT:-/var/lib/pipelines/registry}
delete=${PIPELINES_REGISTRY_DELETE:-0}

die() { printf 'registry-config: error: %s\n' "$*" >&2; exit 2; }

port=${addr##*:}
host=${addr%:*}
host=${host#[}
host=${host%]}
[[ $port =~ ^[0-9]{1,5}$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
  die "PIPELINES_REGISTRY_ADDR=$addr: expected HOST:PORT with a port in 1-65535"
if ! [[ $host =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ || $host == "::1" || $host == localhost ]]; then
  die "PIPELINES_REGISTRY_ADDR=$addr: the local registry listens on a loopback address only (127.0.0.1:5000, [::1]:5000); it has no authentication and no TLS"
fi
case $root in
  /*) ;;
  *) die "PIPELINES_REGISTRY_ROOT=$root: expected an absolute path" ;;
esac
[[ $root != *[\"\\$'\n']* ]] || die "PIPELINES_REGISTRY_ROOT=$root: a path without quotes, backslashes or newlines"
case $delete in
  1) delete_enabled=true ;;
  0 | "") delete_enabled=false ;;
  *) die "PIPELINES_REGISTRY_DELETE=$delete: expected 1 (allow deletes) or 0" ;;
esac

cat <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: "$root"
  delete:
    enabled: $delete_enabled
http:
  addr: "$addr"
YAML
