# A Debian "forky" chroot that brings CPython 3.14, Kamailio 6.1 and baresip 1.1 to a
# machine that has no python3.14 (sourced by _common.sh, not executed).
#
# The chroot lives in $CHROOT_DIR (inside the checkout, git-ignored) and is rebuilt only
# when its recipe (suite, packages, this file's build functions) changes. While tests run,
# /proc, /sys, /dev and the checkout (plus the interpreter behind .venv-worker) are mounted
# into it; chroot_unmount_all undoes every mount and callers run it from an EXIT trap.
#
# The Debian mirror is read at run time from the host's apt sources (or from
# $SIP_TEST_DEBIAN_MIRROR); no mirror address is written into the repository.
#
# Provides: CHROOT_DIR and the functions
#   host_debian_mirror      print the mirror the host's apt uses
#   ensure_chroot           build or reuse the chroot (root only)
#   chroot_mount_all        mount /proc, /sys, /dev, the checkout, the worker interpreter
#   chroot_unmount_all      undo every mount made by chroot_mount_all (idempotent)
#   chroot_exec CMD...      run CMD inside the chroot with a clean environment

CHROOT_DIR="$REPO_ROOT/.chroot-forky"
CHROOT_SUITE="forky"
# sid's debootstrap script handles forky (bookworm's debootstrap has no forky script).
CHROOT_SCRIPT="/usr/share/debootstrap/scripts/sid"
CHROOT_PACKAGES=(python3.14 python3.14-venv python3.14-dev gcc kamailio kamailio-tls-modules
  baresip-core sox ffmpeg iproute2 openssl curl procps ca-certificates sip-tester)
# forky's Release file may be past its Valid-Until date.
CHROOT_APT_OPTIONS=(-o Acquire::Check-Valid-Until=false)
CHROOT_RECIPE_STAMP=".sip-endpoint-recipe"
# Mount points made by chroot_mount_all, in mount order (unmounted in reverse).
CHROOT_MOUNTS=()

# Print the URI of the host's main Debian archive: the first apt source whose suites
# include a plain release name (not -security/-updates/-backports).
host_debian_mirror() {
  if [[ -n "${SIP_TEST_DEBIAN_MIRROR:-}" ]]; then
    echo "$SIP_TEST_DEBIAN_MIRROR"
    return 0
  fi
  local file found=""
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$file" ]] || continue
    found="$(awk '
      $1 == "deb" {
        for (i = 2; i < NF; i++) if ($i ~ /^[a-z+]+:\/\//) {
          if ($(i + 1) !~ /-(security|updates|backports)$/ && $i !~ /security/) { print $i; exit }
          break
        }
      }' "$file")"
    [[ -n "$found" ]] && break
  done
  if [[ -z "$found" ]]; then
    for file in /etc/apt/sources.list.d/*.sources; do
      [[ -f "$file" ]] || continue
      # deb822: stanzas separated by blank lines; "#" lines are comments.
      found="$(awk '
        BEGIN { RS = "" }
        {
          n = split($0, lines, "\n"); uris = ""; plain = 0; deb = 0; enabled = 1
          for (j = 1; j <= n; j++) {
            if (lines[j] ~ /^#/) continue
            if (lines[j] ~ /^Types:/ && lines[j] ~ /[ \t]deb([ \t]|$)/) deb = 1
            if (lines[j] ~ /^Enabled:[ \t]*no/) enabled = 0
            if (lines[j] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", lines[j]); split(lines[j], u, /[ \t]+/); uris = u[1] }
            if (lines[j] ~ /^Suites:/) {
              m = split(lines[j], s, /[ \t]+/)
              for (k = 2; k <= m; k++) if (s[k] != "" && s[k] !~ /-/) plain = 1
            }
          }
          if (deb && enabled && plain && uris != "" && uris !~ /security/) { print uris; exit }
        }' "$file")"
      [[ -n "$found" ]] && break
    done
  fi
  [[ -n "$found" ]] || return 1
  echo "$found"
}

_chroot_recipe() {
  {
    echo "$CHROOT_SUITE ${CHROOT_PACKAGES[*]} ${CHROOT_APT_OPTIONS[*]}"
    declare -f _chroot_build _chroot_configure
  } | sha256sum | cut -d' ' -f1
}

# Succeeds when nothing is mounted at or below "$1".
_nothing_mounted_under() {
  [[ -z "$(findmnt -rn -o TARGET | awk -v root="$1" 'index($0, root) == 1')" ]]
}

# Files the chroot takes from the host on every use: name resolution and the CA
# certificates (pip and curl inside must trust what the host trusts).
_chroot_configure() {
  local root="$1"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  cp -L /etc/hosts "$root/etc/hosts" 2>/dev/null || true
  mkdir -p "$root/usr/local/share/ca-certificates"
  if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
    cp -rL /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  fi
  # The host's pip configuration (index, certificate, constraints), where there is one.
  if [[ -f /etc/pip.conf ]]; then
    cp -L /etc/pip.conf "$root/etc/pip.conf"
  fi
  if [[ -d /etc/xdg/pip ]]; then
    mkdir -p "$root/etc/xdg"
    rm -rf "$root/etc/xdg/pip"
    cp -rL /etc/xdg/pip "$root/etc/xdg/pip"
  fi
  # Package services (kamailio) must not start inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  printf 'Acquire::Check-Valid-Until "false";\n' >"$root/etc/apt/apt.conf.d/99sip-endpoint-valid-until"
}

_chroot_build() {
  local root="$1" mirror="$2"
  debootstrap --variant=minbase "$CHROOT_SUITE" "$root" "$mirror" "$CHROOT_SCRIPT" \
    >"$root.debootstrap.log" 2>&1 || {
    tail -n 30 "$root.debootstrap.log" >&2
    return 1
  }
  _chroot_configure "$root"
  local saved_dir="$CHROOT_DIR"
  CHROOT_DIR="$root"
  chroot_mount_system || {
    CHROOT_DIR="$saved_dir"
    return 1
  }
  local status=0
  {
    chroot_exec apt-get "${CHROOT_APT_OPTIONS[@]}" update -q \
      && chroot_exec env DEBIAN_FRONTEND=noninteractive apt-get "${CHROOT_APT_OPTIONS[@]}" \
        install -y -q --no-install-recommends "${CHROOT_PACKAGES[@]}" \
      && chroot_exec update-ca-certificates \
      && chroot_exec apt-get clean
  } >"$root.apt.log" 2>&1 || status=$?
  chroot_unmount_all
  CHROOT_DIR="$saved_dir"
  if [[ "$status" != 0 ]]; then
    tail -n 30 "$root.apt.log" >&2
    return 1
  fi
  rm -f "$root.debootstrap.log" "$root.apt.log"
}

ensure_chroot() {
  local recipe
  recipe="$(_chroot_recipe)"
  if [[ -f "$CHROOT_DIR/$CHROOT_RECIPE_STAMP" \
    && "$(cat "$CHROOT_DIR/$CHROOT_RECIPE_STAMP")" == "$recipe" ]]; then
    log "$(basename "$CHROOT_DIR") is up to date"
    _chroot_configure "$CHROOT_DIR"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "building the $CHROOT_SUITE chroot needs root (debootstrap, chroot, mount)"
  command -v debootstrap >/dev/null && [[ -f "$CHROOT_SCRIPT" ]] \
    || die "debootstrap is missing: apt-get install debootstrap"
  local mirror
  mirror="$(host_debian_mirror)" \
    || die "no Debian mirror in the host's apt sources; set SIP_TEST_DEBIAN_MIRROR"
  local building="$CHROOT_DIR.building"
  for dir in "$CHROOT_DIR" "$building"; do
    _nothing_mounted_under "$dir" || die "something is still mounted under $dir (see findmnt)"
    # --one-file-system: never follow into a mount, whatever happened before.
    rm -rf --one-file-system "$dir"
  done
  log "Building the $CHROOT_SUITE chroot in $(basename "$CHROOT_DIR") (debootstrap + apt-get)"
  mkdir -p "$building"
  _chroot_build "$building" "$mirror" || {
    _nothing_mounted_under "$building" && rm -rf --one-file-system "$building"
    die "building the $CHROOT_SUITE chroot failed"
  }
  echo "$recipe" >"$building/$CHROOT_RECIPE_STAMP"
  mv "$building" "$CHROOT_DIR"
}

_chroot_mount() {
  local target="$CHROOT_DIR$1"
  shift
  mkdir -p "$target"
  mount "$@" "$target" || return 1
  CHROOT_MOUNTS+=("$target")
}

# The chroot's root as a mount of its own (a slave of the host's mounts: nothing mounted
# inside shows outside, and "ip netns" can run "mount --make-rslave /" in it), then /proc,
# /sys, /dev (with /dev/pts and /dev/shm): what apt and the tests need.
chroot_mount_system() {
  _chroot_mount "" --bind "$CHROOT_DIR" \
    && mount --make-rslave "$CHROOT_DIR" \
    && _chroot_mount /proc -t proc proc \
    && _chroot_mount /sys -t sysfs sysfs \
    && _chroot_mount /dev --rbind /dev \
    && mount --make-rslave "$CHROOT_DIR/dev" \
    || {
      chroot_unmount_all
      return 1
    }
}

# Bind "$1" (a host directory) at the same path inside the chroot, read-only with "ro".
_chroot_bind_same_path() {
  local source="$1" mode="${2:-rw}"
  _chroot_mount "$source" --bind "$source" || return 1
  if [[ "$mode" == ro ]]; then
    mount -o remount,bind,ro "$CHROOT_DIR$source" || return 1
  fi
}

# Everything a test run needs: the system mounts, the checkout at its host path (so
# every path means the same inside and out) and, read-only, the interpreter installation
# behind .venv-worker (pyenv's CPython 3.12 for the pjsua2 worker).
chroot_mount_all() {
  chroot_mount_system || return 1
  _chroot_bind_same_path "$REPO_ROOT" || {
    chroot_unmount_all
    return 1
  }
  local base
  if [[ -x "$VENV_WORKER/bin/python" ]] \
    && base="$("$VENV_WORKER/bin/python" -c 'import sys; print(sys.base_prefix)')" \
    && [[ -d "$base" && "$base" != /usr && "$base" != "$REPO_ROOT"* ]]; then
    _chroot_bind_same_path "$base" ro || {
      chroot_unmount_all
      return 1
    }
  fi
}

# Unmount in reverse order, then whatever else is mounted under the chroot (tests mount
# too: "ip netns add" binds /run/netns), deepest first; a busy mount is detached lazily
# rather than left behind.
chroot_unmount_all() {
  local index target
  for ((index = ${#CHROOT_MOUNTS[@]} - 1; index >= 0; index--)); do
    target="${CHROOT_MOUNTS[index]}"
    if mountpoint -q "$target"; then
      umount -R "$target" 2>/dev/null || umount -R -l "$target" \
        || log "WARNING: could not unmount $target"
    fi
  done
  CHROOT_MOUNTS=()
  while read -r target; do
    umount -R "$target" 2>/dev/null || umount -R -l "$target" 2>/dev/null \
      || log "WARNING: could not unmount $target"
  done < <(findmnt -rn -o TARGET | awk -v root="$CHROOT_DIR" \
    'index($0, root "/") == 1 || $0 == root { print length($0), $0 }' | sort -rn | cut -d" " -f2-)
}

# Run a command inside the chroot with a clean environment: only what the tests and pip
# need is passed on (PIP_* and the variables the caller names in CHROOT_PASS_ENV).
chroot_exec() {
  local env=(HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}"
    PATH="${CHROOT_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}")
  local name
  for name in $(compgen -e); do
    case "$name" in
      PIP_CERT | PIP_FIND_LINKS) ;; # host paths; the chroot has its own CA bundle
      PIP_* | CI) env+=("$name=${!name}") ;;
    esac
  done
  for name in ${CHROOT_PASS_ENV:-}; do
    [[ -n "${!name+set}" ]] && env+=("$name=${!name}")
  done
  chroot "$CHROOT_DIR" /usr/bin/env -i "${env[@]}" "$@"
}
