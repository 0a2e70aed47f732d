#!/usr/bin/env bash
# Provision the container toolchain on a bare Debian 12 host: Docker engine,
# buildx + compose v2 CLI plugins, cosign, a local registry on 127.0.0.1:5000 and
# debootstrap. Root only. Idempotent: every step checks before it acts, so
# running it again (or after a reboot) only starts what is not running.
set -euo pipefail

PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
STATE=/var/lib/pipelines
REGISTRY_ADDR=${PIPELINES_REGISTRY_ADDR:-127.0.0.1:5000}
# trixie ships buildx/compose v2 as static-ish single binaries that need only
# glibc >= 2.34; bookworm's compose is v1 and it has no buildx at all.
PLUGIN_SUITE=${PIPELINES_PLUGIN_SUITE:-trixie}
MIRROR=${PIPELINES_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Opt-in: the engine from another Debian suite instead of the host's own
# docker.io (bookworm: 20.10). "trixie" installs trixie's docker.io and
# docker-cli (26.1.5: API 1.45, healthcheck start_interval); they need only
# glibc >= 2.34, and their containerd, runc and tini come from the host's
# suite (bookworm's containerd 1.6 and runc 1.1; trixie's runc needs glibc 2.38).
ENGINE_SUITE=${PIPELINES_ENGINE_SUITE:-}

log() { printf 'provision: %s\n' "$*" >&2; }
die() { printf 'provision: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts dockerd)"
[ -r /etc/debian_version ] || die "this script provisions Debian hosts only; install Docker >= 20.10 with buildx and compose v2 by your platform's means"

export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_update() {
  if [ "$apt_updated" = 0 ]; then
    # Third-party sources on some hosts are unreachable; that must not stop us
    # as long as Debian's own archive answers (checked by the install below).
    apt-get update -qq || log "apt-get update reported errors; continuing with what it fetched"
    apt_updated=1
  fi
}

need_pkgs=()
if [ -z "$ENGINE_SUITE" ]; then
  command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
else
  # What the suite's docker.io depends on, from the host's own suite.
  for p in containerd runc tini iptables; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || need_pkgs+=("$p")
  done
fi
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
# wrk drives the load check (`pipelines load`).
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  apt_update
  log "installing ${need_pkgs[*]}"
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- Packages from another Debian suite ---------------------------------------
# private_apt SUITE: an apt state of its own for SUITE under $STATE, updated
# once, with its options in APT_OPTS. Packages are taken from it one by one,
# verified against the suite's signed index; nothing of the suite reaches the
# host's sources, so it never brings its libc or anything else along.
private_apt() { # $1 = suite
  local apt_root="$STATE/apt-$1"
  mkdir -p "$apt_root/lists/partial" "$apt_root/cache/archives/partial"
  printf 'deb %s %s main\n' "$MIRROR" "$1" >"$apt_root/sources.list"
  APT_OPTS=(-o "APT::Sandbox::User=root" -o "Dir::Etc::SourceList=$apt_root/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$apt_root/lists" -o "Dir::Cache=$apt_root/cache")
  if [ ! -e "$apt_root/.updated" ]; then
    apt-get "${APT_OPTS[@]}" update -qq
    touch "$apt_root/.updated"
  fi
}

# --- Docker engine from another suite (opt-in) --------------------------------
install_engine_suite() { # $1 = suite
  local suite=$1
  # Only the two .debs are taken from the suite (see private_apt).
  private_apt "$suite"
  local opts=("${APT_OPTS[@]}")
  local want have
  want=$(apt-cache "${opts[@]}" show docker.io 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
  [ -n "$want" ] || die "Debian $suite has no docker.io (PIPELINES_ENGINE_SUITE=$suite)"
  have=$(dpkg-query -W -f '${Version}' docker.io 2>/dev/null || true)
  if [ "$have" != "$want" ] || ! command -v docker >/dev/null 2>&1; then
    log "installing docker.io and docker-cli $want from Debian $suite${have:+ (replacing $have)}"
    local tmp; tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get "${opts[@]}" download docker.io docker-cli >/dev/null 2>&1); then
      apt-get "${opts[@]}" update -qq
      (cd "$tmp" && apt-get "${opts[@]}" download docker.io docker-cli >/dev/null)
    fi
    # Installed by apt from the files: their dependencies come from the host's sources.
    apt-get install -y -qq --no-install-recommends "$tmp"/docker.io_*.deb "$tmp"/docker-cli_*.deb >/dev/null
    rm -rf "$tmp"
    dockerd --version >/dev/null || die "dockerd from Debian $suite does not run on this host"
  fi
  # A daemon already running keeps its old binary; restarting it stops every container, so that is left to you.
  if docker info >/dev/null 2>&1; then
    local running; running=$(docker version --format '{{.Server.Version}}' 2>/dev/null || true)
    [ "${running%%+*}" = "${want%%+*}" ] ||
      log "dockerd $running is still running: stop it and run this script again to start $want"
  fi
}
if [ -n "$ENGINE_SUITE" ]; then
  install_engine_suite "$ENGINE_SUITE"
fi

# --- CLI plugins -------------------------------------------------------------
install_plugin() { # $1 = debian package, $2 = plugin binary name
  local pkg=$1 bin=$2
  # A working plugin (from any cli-plugins directory) is left alone: one
  # installed here would shadow a newer one from the host's own packages.
  if command -v docker >/dev/null 2>&1 && docker "${bin#docker-}" version >/dev/null 2>&1; then return 0; fi
  log "installing $bin from Debian $PLUGIN_SUITE ($pkg)"
  mkdir -p "$PLUGIN_DIR"
  # Only the one plugin binary is taken from the suite (see private_apt).
  private_apt "$PLUGIN_SUITE"
  local opts=("${APT_OPTS[@]}")
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && apt-get "${opts[@]}" download "$pkg" >/dev/null)
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  local found; found=$(find "$tmp/root" -path "*/cli-plugins/$bin" -type f | head -n 1)
  [ -n "$found" ] || die "$pkg from $PLUGIN_SUITE does not contain $bin"
  install -m 0755 "$found" "$PLUGIN_DIR/$bin"
  rm -rf "$tmp"
}
install_plugin docker-buildx docker-buildx
install_plugin docker-compose docker-compose

# --- cosign ------------------------------------------------------------------
# Image signatures (`pipelines sign`, `pipelines verify-signatures`). bookworm
# has no cosign; trixie's is one static Go binary, taken the same way as the
# plugins: a private apt state, the one binary, nothing else of trixie.
COSIGN_BIN=${PIPELINES_COSIGN_BIN:-/usr/local/bin/cosign}
install_cosign() {
  if command -v cosign >/dev/null 2>&1 && cosign version >/dev/null 2>&1; then return 0; fi
  log "installing cosign from Debian $PLUGIN_SUITE"
  local apt_root="$STATE/apt-$PLUGIN_SUITE"
  mkdir -p "$apt_root/lists/partial" "$apt_root/cache/archives/partial" "$(dirname "$COSIGN_BIN")"
  printf 'deb %s %s main\n' "$MIRROR" "$PLUGIN_SUITE" >"$apt_root/sources.list"
  local opts=(-o "APT::Sandbox::User=root" -o "Dir::Etc::SourceList=$apt_root/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$apt_root/lists" -o "Dir::Cache=$apt_root/cache")
  if [ ! -e "$apt_root/.updated" ]; then
    apt-get "${opts[@]}" update -qq
    touch "$apt_root/.updated"
  fi
  local tmp; tmp=$(mktemp -d)
  # A stale private index names a .deb the mirror no longer has: refresh once and retry.
  if ! (cd "$tmp" && apt-get "${opts[@]}" download cosign >/dev/null 2>&1); then
    apt-get "${opts[@]}" update -qq
    (cd "$tmp" && apt-get "${opts[@]}" download cosign >/dev/null)
  fi
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  [ -f "$tmp/root/usr/bin/cosign" ] || die "cosign from $PLUGIN_SUITE does not contain usr/bin/cosign"
  install -m 0755 "$tmp/root/usr/bin/cosign" "$COSIGN_BIN"
  # Debian's build reports "GitVersion: devel"; the package version is the one to know.
  log "cosign $(dpkg-deb -f "$tmp"/*.deb Version) installed at $COSIGN_BIN"
  rm -rf "$tmp"
  "$COSIGN_BIN" version >/dev/null 2>&1 || die "the installed cosign ($COSIGN_BIN) does not run"
}
install_cosign

# --- Docker engine -----------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  if pgrep -x dockerd >/dev/null 2>&1; then
    log "dockerd is running but not answering yet"
  else
    log "starting dockerd"
    mkdir -p /var/log/pipelines
    # No init system on these hosts: run it detached from this shell.
    setsid nohup dockerd >/var/log/pipelines/dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd did not come up in 60 s; see /var/log/pipelines/dockerd.log"
fi

# --- Local registry ----------------------------------------------------------
# Loopback only, deletes off unless PIPELINES_REGISTRY_DELETE=1 (scripts/registry-config.sh
# says why). A registry already running keeps the configuration it started with.
mkdir -p "$STATE/registry"
PIPELINES_REGISTRY_ROOT="$STATE/registry" bash "$(dirname "$0")/registry-config.sh" >"$STATE/registry.yml.new" ||
  die "no registry configuration (see the message above)"
mv "$STATE/registry.yml.new" "$STATE/registry.yml"
if ! curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
  log "starting registry on $REGISTRY_ADDR"
  setsid nohup docker-registry serve "$STATE/registry.yml" >/var/log/pipelines/registry.log 2>&1 </dev/null &
  for _ in $(seq 1 30); do curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && break; sleep 1; done
  curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null || die "registry did not answer on $REGISTRY_ADDR; see /var/log/pipelines/registry.log"
fi

docker buildx version >/dev/null || die "docker buildx does not run"
docker compose version >/dev/null || die "docker compose does not run"
cosign version >/dev/null 2>&1 || die "cosign does not run"
log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker buildx version | cut -d' ' -f1-2), $(docker compose version --short | sed 's/^/compose /'), cosign, registry $REGISTRY_ADDR"
