#!/usr/bin/env bash
# The quality gates of the HomeIQ application's Python code (docs/ci.md), run by the workflow
# examples/ci/github-actions-deploy.yml and, with the same commands, by
# tests/integration/test_ci_workflow.py against the small project in tests/integration/ci/app.
#
#   python-gates.sh audit REQUIREMENTS_FILE...
#       pip-audit of each requirements file (with its dependencies, resolved as pip would) against
#       PyPI's vulnerability data. Fails on a known vulnerability, and also on a requirement that
#       could not be audited (--strict): an unreachable vulnerability service is a failure, never a pass.
#   python-gates.sh coverage MIN SERVICE_DIR...
#       Each service's tests (SERVICE_DIR/tests) with pytest-cov measuring SERVICE_DIR/src; fails
#       when a service's total coverage is under MIN percent. Every service is run before failing.
#
# PYTHON (default python3) is the interpreter with pip-audit, or with pytest, pytest-cov and the
# services' requirements.
set -euo pipefail

PYTHON=${PYTHON:-python3}

die() {
  printf '%s\n' "$*" >&2
  exit 2
}

audit() {
  [ "$#" -gt 0 ] || die "audit gate: no requirements file given: name the application's requirements files"
  local args=() file
  for file in "$@"; do
    [ -f "$file" ] || die "audit gate: $file does not exist: name the application's requirements files"
    args+=(--requirement "$file")
  done
  echo "audit gate: pip-audit of $*"
  if ! "$PYTHON" -m pip_audit --strict --desc off --progress-spinner off "${args[@]}"; then
    echo "audit gate: FAILED: a requirement has a known vulnerability (listed above; upgrade it to a fixed version)," \
         "or could not be audited (an error above; the vulnerability service must answer)" >&2
    return 1
  fi
  echo "audit gate: passed, no known vulnerability in $*"
}

coverage() {
  [ "$#" -ge 2 ] || die "coverage gate: usage: python-gates.sh coverage MIN SERVICE_DIR..."
  local min=$1 dir failed=()
  shift
  if ! [[ "$min" =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v m="$min" 'BEGIN { exit !(m <= 100) }'; then
    die "coverage gate: the threshold '$min' is not a percentage from 0 to 100 (vars.COVERAGE_MIN)"
  fi
  for dir in "$@"; do
    if ! [ -d "$dir/src" ] || ! [ -d "$dir/tests" ]; then
      die "coverage gate: $dir has no src/ and tests/ folders: name the services' folders"
    fi
    echo "coverage gate: $dir (at least ${min}%)"
    if (cd "$dir" && "$PYTHON" -m pytest -q -p no:cacheprovider --cov=src --cov-report=term-missing \
          --cov-fail-under="$min" tests); then
      echo "coverage gate: $dir passed"
    else
      failed+=("$dir")
    fi
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "coverage gate: FAILED for ${failed[*]}: tests failed or coverage is under ${min}% (see above)" >&2
    return 1
  fi
  echo "coverage gate: passed, every service at least ${min}%"
}

case "${1:-}" in
  audit | coverage)
    gate=$1
    shift
    "$gate" "$@"
    ;;
  *)
    die "usage: python-gates.sh audit REQUIREMENTS_FILE... | coverage MIN SERVICE_DIR..."
    ;;
esac
