#!/usr/bin/env bash
# Builds the Lambda binaries for provided.al2023 on arm64 with cargo-lambda and
# prints each zip's size. Output: target/lambda/<binary>/bootstrap(.zip), the
# CodeUri of the functions in template.yaml.
#
#   scripts/build.sh            deploy profile (full LTO, stripped): for deployment
#   PROFILE=release scripts/build.sh   thin LTO: quicker, for trying things
#
# Two binaries host every function: parley-http (HTTP endpoint groups, chosen
# by PARLEY_HANDLER) and parley-worker (stream, queue and schedule handlers).
# Each full-LTO link costs about 1.5 minutes on two cores; one per function
# would not fit a CI budget.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE="${PROFILE:-deploy}"
ARCH="${ARCH:-arm64}"
VENV="${PARLEY_VENV:-.venv}"

if ! command -v cargo-lambda >/dev/null 2>&1; then
  if [ ! -x "$VENV/bin/cargo-lambda" ]; then
    echo "installing cargo-lambda (PyPI) into $VENV" >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check cargo-lambda
  fi
  export PATH="$PWD/$VENV/bin:$PATH"
fi

target_flag=()
if [ "$ARCH" = "arm64" ]; then
  if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
    rustup target add aarch64-unknown-linux-gnu >&2 || {
      echo "cannot add the aarch64 target; build for x86_64 with ARCH=x86_64 (and set Architectures in template.yaml)" >&2
      exit 1
    }
  fi
  target_flag=(--arm64)
fi

start=$(date +%s)
cargo lambda build --profile "$PROFILE" "${target_flag[@]}" --features parley-functions/lambda \
  --bin parley-http --bin parley-worker --output-format zip
echo "built in $(( $(date +%s) - start )) s (profile $PROFILE, $ARCH)"

for bin in parley-http parley-worker; do
  zip="target/lambda/$bin/bootstrap.zip"
  printf '%-14s %8.1f KiB  %s\n' "$bin" "$(echo "$(stat -c %s "$zip") / 1024" | bc -l)" "$zip"
  # SAM's CodeUri takes the folder: keep the unpacked bootstrap beside the zip.
  (cd "target/lambda/$bin" && unzip -o -q bootstrap.zip)
done
