# Shared setup for scripts/test and scripts/develop (sourced, not executed).
#
# Two test environments:
#   2025  Home Assistant 2025.4.4 on CPython 3.13 (.venv), the pjsua2 worker on 3.12
#         (.venv-worker), the built-in engine on 3.13 (.venv-builtin); ruff, mypy, coverage.
#   2026  Home Assistant 2026.10 on CPython 3.14 (requirements_test_2026.txt): with a host
#         python3.14 in .venv-2026 / .venv-builtin-2026, otherwise inside a Debian forky
#         chroot (_chroot.sh) in /opt/venv-2026 / /opt/venv-builtin there.
#
# Provides: REPO_ROOT, VENV, VENV_WORKER, VENV_BUILTIN, and the functions
#   find_python VERSION        print a working pythonX.Y interpreter (or fail with advice)
#   ensure_system_packages     install kamailio, baresip, sox, ... (root) or tell how
#   ensure_venvs               create/update .venv (3.13), .venv-worker (3.12), .venv-builtin (3.13)
#   env2026_uses_chroot        succeeds when the 2026 environment needs the forky chroot
#   ensure_env2026             create/update the 3.14 environment (mounts the chroot if used)
#   run2026 CMD...             run CMD in the 3.14 environment (host or chroot)
#   phase NAME / phase_end     print how long each phase took

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
VENV_WORKER="$REPO_ROOT/.venv-worker"
# The built-in engine's interpreter: standard library + audioop-lts (+ coverage to measure).
VENV_BUILTIN="$REPO_ROOT/.venv-builtin"
HA_PYTHON_VERSION="3.13"
WORKER_PYTHON_VERSION="3.12"
HA2026_PYTHON_VERSION="3.14"
# sip-tester is Debian's SIPp (a second SIP peer for the tests). gcc and g++ build the
# Home Assistant dependencies that have no wheel for the interpreter (pymicro-vad and
# pyspeex-noise for 2025.4.4 on CPython 3.13).
SYSTEM_PACKAGES=(kamailio kamailio-tls-modules baresip-core sox ffmpeg iproute2 openssl curl
  sip-tester gcc g++)
COVERAGE_PTH="sip_endpoint_coverage.pth"

log() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

_PHASE_NAME=""
_PHASE_START=0
PHASE_SUMMARY=()

phase() {
  phase_end
  _PHASE_NAME="$1"
  _PHASE_START=$SECONDS
  log "$1"
}

phase_end() {
  if [[ -n "$_PHASE_NAME" ]]; then
    local took=$((SECONDS - _PHASE_START))
    PHASE_SUMMARY+=("$(printf '%-28s %5ds' "$_PHASE_NAME" "$took")")
    log "$_PHASE_NAME took ${took}s"
    _PHASE_NAME=""
  fi
}

print_phase_summary() {
  phase_end
  log "Durations:"
  local line
  for line in "${PHASE_SUMMARY[@]}"; do
    printf '    %s\n' "$line"
  done
}

# Succeeds when "$1" runs and is CPython "$2" (e.g. 3.12).
_python_is() {
  local candidate="$1" version="$2"
  [[ -x "$candidate" ]] || candidate="$(command -v "$candidate" 2>/dev/null)" || return 1
  [[ -n "$candidate" ]] || return 1
  local found
  found="$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || return 1
  [[ "$found" == "$version" ]]
}

# Print the path of a working pythonX.Y: PATH first (pyenv shims can exist and fail),
# then pyenv's installed versions, then the usual system locations.
find_python() {
  local version="$1" candidate prefix
  local candidates=("python$version")
  if command -v pyenv >/dev/null 2>&1; then
    if prefix="$(pyenv prefix "$version" 2>/dev/null)"; then
      candidates+=("$prefix/bin/python$version")
    fi
  fi
  candidates+=("$HOME/.pyenv/versions/$version"*/bin/"python$version"
    "/usr/local/bin/python$version" "/usr/bin/python$version")
  for candidate in "${candidates[@]}"; do
    if _python_is "$candidate" "$version"; then
      command -v "$candidate" 2>/dev/null || echo "$candidate"
      return 0
    fi
  done
  {
    echo "ERROR: no working CPython $version found (tried: ${candidates[*]})."
    case "$version" in
      3.12) echo "  The SIP worker needs CPython 3.12 (pjsua2 wheels exist only up to 3.12)." ;;
      3.13) echo "  Home Assistant 2025.4.4 needs CPython 3.13.0 or 3.13.1." ;;
      3.14) echo "  Home Assistant 2026.10 needs CPython 3.14.2 or later." ;;
    esac
    echo "  Install it with pyenv:  pyenv install $version  (e.g. 'pyenv install 3.12.1')"
    echo "  Debian bookworm ships only 3.11; use pyenv, uv ('uv python install $version')"
    echo "  or the deadsnakes builds, then re-run this script."
  } >&2
  return 1
}

_system_packages_missing() {
  local missing=() package
  for package in "${SYSTEM_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  echo "${missing[*]}"
}

# The Debian kamailio package may start its own service on 0.0.0.0:5060: stop it.
_stop_packaged_kamailio() {
  if ! ss -H -lnup 2>/dev/null | grep -E '(0\.0\.0\.0|\*|\[::\]):5060 ' | grep -q kamailio; then
    return 0
  fi
  log "Stopping the kamailio service the Debian package started"
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now kamailio || true
  else
    invoke-rc.d kamailio stop || service kamailio stop || true
    update-rc.d kamailio disable >/dev/null 2>&1 || true
  fi
  sleep 1
  if ss -H -lnup 2>/dev/null | grep -E '(0\.0\.0\.0|\*|\[::\]):5060 ' | grep -q kamailio; then
    die "the kamailio service still listens on port 5060; stop it (systemctl disable --now kamailio)"
  fi
}

ensure_system_packages() {
  local missing
  missing="$(_system_packages_missing)"
  if [[ -n "$missing" ]]; then
    if [[ "$(id -u)" != 0 ]]; then
      die "missing system packages: $missing
  install them with:  sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing"
    fi
    log "Installing system packages: $missing"
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      # Keep package services (kamailio) from starting during the installation.
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    local status=0
    # shellcheck disable=SC2086
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; } || status=$?
    if [[ "$made_policy" == 1 ]]; then
      rm -f /usr/sbin/policy-rc.d
    fi
    [[ "$status" == 0 ]] || die "apt-get install failed"
  fi
  _stop_packaged_kamailio
}

# _requirements_stamp RUNNER PYTHON FILES...: what a venv was built from.
_requirements_stamp() {
  local runner="$1" python="$2"
  shift 2
  {
    "$runner" "$python" -c 'import sys; print(sys.version)'
    cat "$@"
  } | sha256sum | cut -d' ' -f1
}

# _ensure_venv_in RUNNER HOST_DIR DIR PYTHON CONSTRAINTS REQUIREMENTS...: (re)create the
# venv when its stamp changed. RUNNER runs a command where the venv lives ("command" on
# the host, chroot_exec in the chroot); DIR is the venv's path there, HOST_DIR the same
# directory seen from the host.
_ensure_venv_in() {
  local runner="$1" host_dir="$2" dir="$3" python="$4" constraints="$5"
  shift 5
  local stamp
  stamp="$(_requirements_stamp "$runner" "$python" "$@" "$constraints")"
  # bin/python is checked where it runs: in the chroot it links to the chroot's python.
  if [[ -f "$host_dir/.requirements-stamp" && "$(cat "$host_dir/.requirements-stamp")" == "$stamp" ]] \
    && "$runner" test -x "$dir/bin/python"; then
    log "$(basename "$dir") is up to date"
    return 0
  fi
  log "Creating $(basename "$dir") with $python"
  rm -rf "$host_dir"
  "$runner" "$python" -m venv "$dir" || die "could not create $dir with $python"
  local args=() requirements
  for requirements in "$@"; do
    args+=(-r "$requirements")
  done
  local pip_log="$host_dir/pip-install.log"
  if ! "$runner" "$dir/bin/python" -m pip install --disable-pip-version-check \
    "${args[@]}" -c "$constraints" >"$pip_log" 2>&1; then
    grep -v "^WARNING: Location 'file:" "$pip_log" | tail -n 40 >&2
    die "pip install into $(basename "$dir") failed (full log: $pip_log)"
  fi
  echo "$stamp" >"$host_dir/.requirements-stamp"
}

# _ensure_venv DIR PYTHON REQUIREMENTS...: a host venv pinned by constraints.txt.
_ensure_venv() {
  local dir="$1" python="$2"
  shift 2
  _ensure_venv_in command "$dir" "$dir" "$python" "$REPO_ROOT/constraints.txt" "$@"
}

# Let coverage measure every process of a venv when COVERAGE_PROCESS_START is set
# (pytest-xdist workers in .venv, SIP workers started with "python -I" in .venv-worker).
# Without it nothing is imported: coverage would add about 8 MiB to every worker.
# A second argument names coverage's core for that venv (COVERAGE_CORE).
_install_coverage_pth() {
  local dir="$1" core="${2:-}" site start='__import__("coverage").process_startup()'
  site="$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  if [[ -n "$core" ]]; then
    start="os.environ.setdefault('COVERAGE_CORE', '$core'), $start"
  fi
  printf '%s\n' "import os; os.environ.get('COVERAGE_PROCESS_START') and ($start)" \
    >"$site/$COVERAGE_PTH"
}

ensure_venvs() {
  local ha_python worker_python
  ha_python="$(find_python "$HA_PYTHON_VERSION")" || exit 1
  worker_python="$(find_python "$WORKER_PYTHON_VERSION")" || exit 1
  _ensure_venv "$VENV" "$ha_python" "$REPO_ROOT/requirements_test.txt"
  _ensure_venv "$VENV_WORKER" "$worker_python" "$REPO_ROOT/requirements_worker.txt"
  _ensure_venv "$VENV_BUILTIN" "$ha_python" "$REPO_ROOT/requirements_builtin.txt"
  _install_coverage_pth "$VENV"
  _install_coverage_pth "$VENV_BUILTIN"
  # pjsua2 runs some callbacks on its own C threads (a player's end of file, RFC 4733
  # DTMF, the audio stream), where coverage's per-thread tracers never run;
  # sys.monitoring sees every thread.
  _install_coverage_pth "$VENV_WORKER" sysmon
}

# shellcheck source=scripts/_chroot.sh
source "$REPO_ROOT/scripts/_chroot.sh"

# The 2026 environment: where it runs and its interpreters as seen from there.
ENV2026_VENV=""
ENV2026_BUILTIN=""

env2026_uses_chroot() {
  [[ "${SIP_TEST_2026_CHROOT:-auto}" == 1 ]] && return 0
  [[ "${SIP_TEST_2026_CHROOT:-auto}" == 0 ]] && return 1
  ! _python_is "python$HA2026_PYTHON_VERSION" "$HA2026_PYTHON_VERSION"
}

# Run a command in the 2026 environment (inside the chroot when it is used).
run2026() {
  if env2026_uses_chroot; then
    chroot_exec "$@"
  else
    "$@"
  fi
}

# Create or update the 2026 environment. With the chroot this mounts it (the caller
# unmounts with chroot_unmount_all, from an EXIT trap too) and keeps it mounted for run2026.
ensure_env2026() {
  local constraints="$REPO_ROOT/constraints-2026.txt" python runner host_prefix=""
  if env2026_uses_chroot; then
    ensure_chroot
    chroot_mount_all || die "mounting into $(basename "$CHROOT_DIR") failed"
    python="/usr/bin/python$HA2026_PYTHON_VERSION"
    runner=chroot_exec
    host_prefix="$CHROOT_DIR"
    ENV2026_VENV="/opt/venv-2026"
    ENV2026_BUILTIN="/opt/venv-builtin"
  else
    python="$(find_python "$HA2026_PYTHON_VERSION")" || exit 1
    runner=command
    ENV2026_VENV="$REPO_ROOT/.venv-2026"
    ENV2026_BUILTIN="$REPO_ROOT/.venv-builtin-2026"
  fi
  _ensure_venv_in "$runner" "$host_prefix$ENV2026_VENV" "$ENV2026_VENV" "$python" \
    "$constraints" "$REPO_ROOT/requirements_test_2026.txt"
  _ensure_venv_in "$runner" "$host_prefix$ENV2026_BUILTIN" "$ENV2026_BUILTIN" "$python" \
    "$constraints" "$REPO_ROOT/requirements_builtin.txt"
}
