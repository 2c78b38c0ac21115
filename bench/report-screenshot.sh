#!/usr/bin/env bash
# Renders the HTML report of a generated register in headless Chromium and saves a
# screenshot and an A4 print: bench/report-screenshot.sh [ROWS] [OUT.png]   (default 20000 rows,
# ./report.png; the print goes beside it as OUT.pdf)
# Needs Debian's chromium (apt-get install chromium). HEIGHT=2000 sets the window height.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-20000}
OUT=$(realpath -m "${2:-report.png}")
DIR=$(mktemp -d /tmp/congvan-screenshot.XXXXXX)
PROFILE=$(mktemp -d /tmp/congvan-chromium.XXXXXX)
trap 'rm -rf "$DIR" "$PROFILE"' EXIT

cargo build --release --bin congvan --example register-1m
cargo run --release --example register-1m -- --binary "${CARGO_TARGET_DIR:-target}/release/congvan" --rows "$ROWS" --dir "$DIR" --fill-only
"${CARGO_TARGET_DIR:-target}"/release/congvan --config "$DIR/congvan.toml" report --from 2026-01-01 --to 2026-12-31 \
  --format html --output "$DIR/report.html"
/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --force-color-profile=srgb --force-device-scale-factor=1 \
  --user-data-dir="$PROFILE" --screenshot="$OUT" --window-size="1280,${HEIGHT:-2000}" \
  "file://$DIR/report.html" </dev/null >/dev/null 2>&1
/usr/bin/chromium --headless --no-sandbox --disable-gpu --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --no-pdf-header-footer \
  --user-data-dir="$PROFILE" --print-to-pdf="${OUT%.png}.pdf" \
  "file://$DIR/report.html" </dev/null >/dev/null 2>&1
echo "screenshot: $OUT"
echo "A4 print: ${OUT%.png}.pdf"
