# shellcheck shell=bash
# The Rust half of the official-provider suites, meant to be sourced after tools.sh by
# scripts/test-ofrep and scripts/test-flagd (and scripts/test, which builds it early):
#
#   build_openfeature_rust   # the tests/openfeature workspace (the OFREP adapter and the flagd
#                            # provider's tests): cargo fmt --check, then one build that also
#                            # lints (clippy_build_env); a no-op when nothing changed
#
# It sets OPENFEATURE_TARGET, the workspace's target directory: target/openfeature under
# Flagwire's (CARGO_TARGET_DIR or target/), apart from Flagwire's own artifacts, and exports
# PROTOC: crate open-feature-flagd's build script needs one, and the machine has none, so it is
# PyPI grpcio-tools' (tests/openfeature/flagd/rust/protoc, from the venv made here).

build_openfeature_rust() {
  local dir="$FLAGWIRE_ROOT/tests/openfeature" rvenv stamp hash target
  target="${CARGO_TARGET_DIR:-$FLAGWIRE_ROOT/target}"
  case "$target" in /*) ;; *) target="$FLAGWIRE_ROOT/$target" ;; esac
  OPENFEATURE_TARGET="$target/openfeature"
  export OPENFEATURE_TARGET

  export PROTOC="$dir/flagd/rust/protoc"
  clippy_build_env
  mkdir -p "$OPENFEATURE_TARGET"
  # scripts/test's lanes may call this twice at once (one builds, the other's suite needs the
  # result): the lock makes the second wait, then find the venv made and the build fresh.
  (
    flock 9
    rvenv="$dir/flagd/rust/.venv"
    venv_install "$rvenv"
    stamp="$rvenv/.flagwire-deps.sha256"
    hash="$({ "$rvenv/bin/python" --version; cat "$dir/flagd/rust/requirements.txt" "$dir/flagd/rust/constraints.txt"; } |
      sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
      rm -f "$stamp"
      venv_install "$rvenv" -c "$dir/flagd/rust/constraints.txt" -r "$dir/flagd/rust/requirements.txt"
      echo "$hash" >"$stamp"
    fi
    "$PROTOC" --version >/dev/null
    # `cargo build --all-targets`, not `cargo test --no-run`: the adapter is a binary the
    # harness runs, which `cargo test` would build only as a test harness; and `--all-targets`
    # turns on the dev-dependencies (all of the flagd crate's), so `cargo test --workspace`
    # finds it all built.
    cd "$dir" && export CARGO_TARGET_DIR="$OPENFEATURE_TARGET" &&
      cargo fmt --all --check && cargo build --locked --workspace --all-targets
  ) 9>"$OPENFEATURE_TARGET/.flagwire-build.lock"
}
