#!/usr/bin/env bash
# Builds the Debian package target/debian/congvan_<version>-1_<arch>.deb: a release build, the
# manual pages and shell completions made by that binary (`congvan man`, `congvan completions`),
# then `cargo deb --no-build` with the metadata of Cargo.toml. Needs cargo-deb
# (`cargo install cargo-deb`, installed here when missing).
#
#   packaging/deb.sh [--dev] [cargo deb arguments...]
#
# --dev packages the debug binary as it is (built when missing): quick, for tests (.ci/run
# installs it with tests/deploy.sh --deb after the suite built it); a package for machines is
# always the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [ "${1:-}" = "--dev" ]; then
  profile=dev
  shift
fi
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked cargo-deb
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
if [ "$profile" = release ]; then
  cargo build --release --locked
  bin="$target_dir/release/congvan"
  extra=()
else
  bin="$target_dir/debug/congvan"
  [ -x "$bin" ] || cargo build --locked
  extra=(--profile dev --fast)
fi
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man" >/dev/null
"$bin" completions bash > "$assets/completions/congvan.bash"
"$bin" completions zsh > "$assets/completions/_congvan"
"$bin" completions fish > "$assets/completions/congvan.fish"
cargo deb --no-build --locked "${extra[@]}" "$@"
