#!/bin/bash
# Assemble the proxy's root filesystem from the installed Debian packages:
# HAProxy, the health check's nc, and exactly the packages that own the shared
# libraries they load (ldd), nothing else. Each package's dpkg status goes to
# var/lib/dpkg/status.d so scanners see every OS package that is present.
# Fails if a shell or package manager slipped in.
set -euo pipefail
out=$1
shift
binaries=("$@")

mkdir -p "$out/usr/bin" "$out/usr/sbin" "$out/usr/lib" "$out/usr/lib64" "$out/var/lib/dpkg/status.d"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$out/$d"; done

# The owning package of every binary and every library it loads.
# base-files: /etc/os-release, by which scanners know which distribution's
# advisories apply to the packages below.
declare -A pkgs=([base-files]=1)
for bin in "${binaries[@]}"; do
  for file in "$bin" $(ldd "$bin" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }'); do
    real=$(readlink -f "$file")
    for candidate in "$file" "$real" "${real#/usr}"; do
      if owner=$(dpkg-query -S "$candidate" 2>/dev/null); then
        pkgs[${owner%%:*}]=1
        break
      fi
    done
  done
done

for pkg in "${!pkgs[@]}"; do
  while IFS= read -r path; do
    path=${path#"${path%%[![:space:]]*}"}  # dpkg indents the list
    [ -n "$path" ] || continue
    case "$path" in
      /usr/share/doc/*/copyright) ;;
      /usr/share/doc/* | /usr/share/man/* | /usr/share/lintian/* | /usr/share/bug/* | /usr/share/locale/*) continue ;;
      /etc/init.d/* | /etc/default/* | /etc/logrotate.d/* | /etc/rsyslog.d/* | /lib/systemd/* | /usr/lib/systemd/*) continue ;;
    esac
    if [ -L "$path" ] || [ -f "$path" ]; then
      # Through the merged-/usr symlinks, so every file lands at its real path.
      dir=$(readlink -f "$(dirname "$path")")
      mkdir -p "$out$dir"
      cp -a "$path" "$out$dir/"
    fi
  done < <(dpkg-query -W -f '${db-fsys:Files}' "$pkg")
  dpkg-query -s "$pkg" > "$out/var/lib/dpkg/status.d/$pkg"
  for md5 in "/var/lib/dpkg/info/$pkg.md5sums" "/var/lib/dpkg/info/$pkg:amd64.md5sums"; do
    if [ -f "$md5" ]; then cp "$md5" "$out/var/lib/dpkg/status.d/$pkg.md5sums"; fi
  done
done

mkdir -p "$out/etc/haproxy" "$out/tmp"
chmod 1777 "$out/tmp"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'haproxy:x:10080:10080:haproxy:/nonexistent:/sbin/nologin' \
  > "$out/etc/passwd"
printf '%s\n' 'root:x:0:' 'haproxy:x:10080:' > "$out/etc/group"

for forbidden in sh bash dash apt apt-get dpkg; do
  if [ -e "$out/usr/bin/$forbidden" ] || [ -e "$out/usr/sbin/$forbidden" ]; then
    echo "assemble: $forbidden slipped into the proxy rootfs" >&2
    exit 1
  fi
done
echo "assemble: ${#pkgs[@]} packages: ${!pkgs[*]}"
