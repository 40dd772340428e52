#!/usr/bin/env bash
# Install simgen into ./.venv on Debian/Ubuntu (Python 3.10+).
#
#   ./install.sh          simgen and its dependencies
#   ./install.sh --test   ... plus what the test suite needs (and Chromium for the report test)
#
# System libraries (Mesa's headless OpenGL: EGL, or OSMesa) are installed with apt-get when
# running as root or with sudo; otherwise the script stops and prints the exact command.
set -euo pipefail
cd "$(dirname "$0")"

EXTRAS=""
for arg in "$@"; do
  case "$arg" in
    --test) EXTRAS="[test]" ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[install] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- Python: prefer 3.11 / 3.10, for which pybullet publishes wheels ---------------------------
PY=""
for cand in ${PYTHON:-} python3.11 python3.10 python3.12 python3.13 python3; do
  if command -v "$cand" >/dev/null 2>&1 && \
     "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    PY="$(command -v "$cand")"; break
  fi
done
[ -n "$PY" ] || die "Python 3.10 or newer not found; install it: sudo apt-get install python3 python3-venv"
PYVER="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
say "using $PY (Python $PYVER)"

# --- system packages ------------------------------------------------------------------------
have_lib() {  # have_lib libEGL.so.1
  { /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null || true; } | grep -q "$1" && return 0
  ls /usr/lib/*/"$1" /usr/lib/"$1" /usr/lib64/"$1" >/dev/null 2>&1
}
PKGS=()
"$PY" -m venv --help >/dev/null 2>&1 && "$PY" -c 'import ensurepip' 2>/dev/null || PKGS+=("python${PYVER}-venv")
have_lib libEGL.so.1 || PKGS+=(libegl1)
have_lib libGL.so.1 || PKGS+=(libgl1)
if ! have_lib libEGL_nvidia.so.0; then
  have_lib libEGL_mesa.so.0 || PKGS+=(libegl-mesa0)
  ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1 || PKGS+=(libgl1-mesa-dri)
fi
have_lib libOSMesa.so || have_lib libOSMesa.so.8 || have_lib libOSMesa.so.6 || PKGS+=(libosmesa6)
case "$PYVER" in
  3.10|3.11) ;;
  *) command -v g++ >/dev/null 2>&1 || PKGS+=(g++)   # pybullet is compiled from source
     "$PY" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
       || PKGS+=("python${PYVER}-dev") ;;
esac
if [ ${#PKGS[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing system packages; install them and run again: sudo apt-get install -y ${PKGS[*]}"
  fi
  say "installing system packages: ${PKGS[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q "${PKGS[@]}" >/dev/null 2>&1 || \
    { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${PKGS[@]}" >/dev/null; } || \
    die "apt-get could not install: ${PKGS[*]}"
fi

# --- a browser for the HTML report's test (--test only; the test skips without one) ----------
if [ -n "$EXTRAS" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then BSUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then BSUDO="sudo"; else BSUDO="none"; fi
  if [ "$BSUDO" != none ] && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium (tests open the HTML report in it)"
    export DEBIAN_FRONTEND=noninteractive
    $BSUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
      { $BSUDO apt-get update -q >/dev/null && $BSUDO apt-get install -y -q chromium >/dev/null 2>&1; } || \
      say "could not install chromium: the report's browser test will be skipped"
  else
    say "no chromium: install it (sudo apt-get install chromium) to run the report's browser test"
  fi
fi

# --- virtual environment --------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
case "$PYVER" in 3.10|3.11) ;; *) say "Python $PYVER: pybullet has no wheel and compiles from source (several minutes)";; esac
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
say "installing simgen$EXTRAS (editable)"
.venv/bin/python -m pip install -q -e ".$EXTRAS" 2>&1 | grep -v -E "^(WARNING|DEPRECATION)" || true
.venv/bin/python -c "import simgen, pybullet_data, pyrender" 2>/dev/null || die "simgen did not install; see pip's output above"

# --- check that headless OpenGL works -------------------------------------------------------
if ! .venv/bin/python -c "from simgen.render.platform import select_platform; print(select_platform())" >/dev/null 2>&1; then
  .venv/bin/python -c "from simgen.render.platform import select_platform; select_platform()" || true
  die "no headless OpenGL platform works (see above)"
fi
say "ready: $(.venv/bin/simgen --help >/dev/null && echo 'simgen') with GL $(.venv/bin/python -c 'from simgen.render.platform import select_platform; print(select_platform())')"
