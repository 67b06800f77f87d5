#!/usr/bin/env bash
# Runs every check Parley has, on a fresh machine or a warm one:
#   - installs what the tests need that is missing (a Python venv with the
#     moto AWS emulator, cfn-lint and python-hcl2, under .venv/),
#   - starts moto on a free loopback port and points PARLEY_AWS_ENDPOINT at it,
#   - formats-checks and lints the Rust code, runs the whole test suite,
#   - lints template.yaml, formats-checks the Terraform in infrastructure/
#     and checks that the two still describe the same stack,
#   - stops what it started. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n==> %s\n' "$*"; }

# ---- tools -----------------------------------------------------------------
VENV=$ROOT/.venv
PY_REQUIREMENTS="moto[server]==5.2.5 cfn-lint==1.58.0 python-hcl2==8.1.4"
if [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/cfn-lint" ] \
  || ! "$VENV/bin/python" -c 'import hcl2' 2>/dev/null; then
  step "installing test tools into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $PY_REQUIREMENTS
fi

# ---- AWS emulator ------------------------------------------------------------
MOTO_PID=""
cleanup() {
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
step "starting moto on 127.0.0.1:$MOTO_PORT"
# One request at a time: moto's conditional writes are not atomic under
# concurrent requests (see the launcher's notes).
"$VENV/bin/python" scripts/moto_server_serialized.py 127.0.0.1 "$MOTO_PORT" > "${TMPDIR:-/tmp}/parley-moto-$MOTO_PORT.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1 && break
  kill -0 "$MOTO_PID" 2>/dev/null || { echo "moto failed to start" >&2; exit 1; }
  sleep 0.2
done
export PARLEY_AWS_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

# ---- Rust ------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --features parley-functions/lambda --quiet -- -D warnings

step "cargo test"
cargo test --workspace --all-targets --features parley-functions/lambda --no-fail-fast

# ---- infrastructure ------------------------------------------------------------
step "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
step "template.yaml: functions with KMS grants reach the keys table"
"$VENV/bin/python" scripts/check_template_policies.py template.yaml

if [ -d infrastructure ]; then
  if command -v terraform >/dev/null 2>&1; then
    # Terraform warns on every call when its CLI configuration file is
    # missing (some machines name one that does not exist); none is needed here.
    if [ ! -e "${TF_CLI_CONFIG_FILE:-$HOME/.terraformrc}" ]; then
      export TF_CLI_CONFIG_FILE=/dev/null
    fi
    step "terraform fmt -check"
    terraform fmt -check -recursive infrastructure
    # Providers cannot be downloaded here; where a local copy of the AWS
    # provider exists, each stage root is also validated and the stack is
    # planned in tests (in a scratch copy, so no .terraform/ or lock file
    # lands in the tree).
    TF_PLUGIN_DIR=${PARLEY_TF_PLUGIN_DIR:-/opt/tf-plugins}
    if [ -d "$TF_PLUGIN_DIR/registry.terraform.io/hashicorp/aws" ]; then
      TF_SCRATCH=$(mktemp -d)
      cp -r infrastructure "$TF_SCRATCH/"
      for stage in "$TF_SCRATCH"/infrastructure/stages/*/; do
        step "terraform validate $(basename "$stage")"
        (cd "$stage" && terraform init -input=false -backend=false -plugin-dir="$TF_PLUGIN_DIR" >/dev/null \
          && terraform validate -no-color)
      done
      step "terraform test (the stack planned against a mocked AWS provider)"
      (cd "$TF_SCRATCH/infrastructure/modules/stack" \
        && terraform init -input=false -backend=false -plugin-dir="$TF_PLUGIN_DIR" >/dev/null \
        && terraform test -no-color)
      rm -rf "$TF_SCRATCH"
    else
      echo "no local AWS provider in $TF_PLUGIN_DIR: terraform validate and test skipped" >&2
    fi
    step "infrastructure/ and template.yaml describe the same stack"
    "$VENV/bin/python" scripts/check_infrastructure.py template.yaml infrastructure
    "$VENV/bin/python" scripts/check_infrastructure_selftest.py template.yaml infrastructure
  else
    echo "terraform is not installed: infrastructure/ formatting not checked" >&2
    exit 1
  fi
fi

step "all checks passed"
