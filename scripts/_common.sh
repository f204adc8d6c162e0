# Shared setup for scripts/test and scripts/develop (sourced, not executed).
#
# Provides: REPO_ROOT, VENV, VENV_WORKER, and the functions
#   find_python VERSION        print a working pythonX.Y interpreter (or fail with advice)
#   ensure_system_packages     install kamailio, baresip, sox, ... (root) or tell how
#   ensure_venvs               create/update .venv (3.13) and .venv-worker (3.12)
#   phase NAME / phase_end     print how long each phase took

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
VENV_WORKER="$REPO_ROOT/.venv-worker"
HA_PYTHON_VERSION="3.13"
WORKER_PYTHON_VERSION="3.12"
SYSTEM_PACKAGES=(kamailio kamailio-tls-modules baresip-core sox ffmpeg iproute2 openssl curl)
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

_requirements_stamp() {
  local python="$1"
  shift
  {
    "$python" -c 'import sys; print(sys.version)'
    cat "$@"
  } | sha256sum | cut -d' ' -f1
}

# _ensure_venv DIR PYTHON REQUIREMENTS...: (re)create DIR when the stamp changed.
_ensure_venv() {
  local dir="$1" python="$2"
  shift 2
  local stamp
  stamp="$(_requirements_stamp "$python" "$@" "$REPO_ROOT/constraints.txt")"
  if [[ -f "$dir/.requirements-stamp" && "$(cat "$dir/.requirements-stamp")" == "$stamp" \
    && -x "$dir/bin/python" ]]; then
    log "$(basename "$dir") is up to date"
    return 0
  fi
  log "Creating $(basename "$dir") with $python"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  local args=() requirements
  for requirements in "$@"; do
    args+=(-r "$requirements")
  done
  local pip_log="$dir/pip-install.log"
  if ! "$dir/bin/python" -m pip install --disable-pip-version-check \
    "${args[@]}" -c "$REPO_ROOT/constraints.txt" >"$pip_log" 2>&1; then
    grep -v "^WARNING: Location 'file:" "$pip_log" | tail -n 40 >&2
    die "pip install into $(basename "$dir") failed (full log: $pip_log)"
  fi
  echo "$stamp" >"$dir/.requirements-stamp"
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
  _install_coverage_pth "$VENV"
  # pjsua2 runs some callbacks on its own C threads (a player's end of file, RFC 4733
  # DTMF, the audio stream), where coverage's per-thread tracers never run;
  # sys.monitoring sees every thread.
  _install_coverage_pth "$VENV_WORKER" sysmon
}
