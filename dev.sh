#!/usr/bin/env bash
# Everything a fresh Debian machine needs, in one place.
#   ./dev.sh run    install what the archive needs, set it up, and start it on http://127.0.0.1:5000
#   ./dev.sh test   install the test servers too (Ceph radosgw, PostgreSQL, Redis, Chromium) and run the whole
#                   test suite on SQLite and on PostgreSQL
# Extra arguments after 'test' go to pytest; after 'run' to 'brucken run'.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

python_env() {
  local extras=$1
  apt_install python3 python3-venv ca-certificates fonts-dejavu-core  # fonts: PDF catalogues in every partner city's letters
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # Reinstall only when the dependencies changed: a second run starts at once.
  local stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras}"
  if [ ! -e "$stamp" ]; then
    echo "==> Python packages (${extras:-base})"
    .venv/bin/python -m pip install -q --upgrade pip
    if [ -n "$extras" ]; then .venv/bin/python -m pip install -q -e ".[${extras}]"
    else .venv/bin/python -m pip install -q -e .; fi
    touch "$stamp"
  fi
}

# The whole suite on every database in TEST_DATABASES (default: SQLite and PostgreSQL; tests/servers/database.py),
# side by side: each run starts its own servers, and a run spends about half its time waiting on them.
# The first database's run prints here and runs every test; the others write test-artifacts/pytest-<database>.log,
# shown at the end, and leave out the tests no database changes (marked any_database in tests/conftest.py).
run_suite() {
  local databases status=0 code entry pid database log
  read -r -a databases <<< "${TEST_DATABASES:-sqlite postgresql}"
  mkdir -p test-artifacts
  local others=()
  for database in "${databases[@]:1}"; do
    log="test-artifacts/pytest-${database}.log"
    .venv/bin/python -m pytest -p no:cacheprovider --database="$database" --database-dependent-only "$@" \
      > "$log" 2>&1 < /dev/null &
    others+=("$!:${database}:${log}")
  done
  .venv/bin/python -m pytest --database="${databases[0]}" "$@" || status=$?
  for entry in "${others[@]}"; do
    IFS=: read -r pid database log <<< "$entry"
    code=0
    wait "$pid" || code=$?
    echo
    if [ "$code" = 0 ]; then
      echo "==> the same tests on ${database}: passed (${log})"
      tail -n 3 "$log"
    else
      echo "==> the same tests on ${database}: FAILED (exit ${code}); its output:"
      cat "$log"
      status=$code
    fi
  done
  return "$status"
}

case "${1:-}" in
  run)
    shift
    python_env ""
    .venv/bin/brucken init
    exec .venv/bin/brucken run "$@"
    ;;
  test)
    shift
    # Real servers for the tests: Ceph's S3 gateway with a one-node cluster, PostgreSQL, Redis, and Chromium for the browser.
    apt_install radosgw ceph-mon ceph-osd postgresql redis-server chromium chromium-driver poppler-utils
    python_env "test,bench"
    run_suite "$@"
    ;;
  *)
    echo "usage: ./dev.sh run | ./dev.sh test [pytest arguments]" >&2
    exit 2
    ;;
esac
