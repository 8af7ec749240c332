#!/usr/bin/env bash
# System packages the browser and deployment tests need, from Debian's own archive:
#   chromium    headless browser the UI test drives through Playwright (no `playwright install`)
#   postgresql  Dagster instance storage for the deployment test (the cluster is started here)
# Idempotent: packages already present are not fetched again. Needs root (CI runs as root);
# elsewhere it says what it cannot do and exits 0, and the tests that need them skip loudly.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)

if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ci-system-deps: cannot install ${need[*]} (needs root and apt-get); the browser and" \
         "Postgres tests will skip" >&2
    exit 0
  fi
  echo "ci-system-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Debian creates a cluster on install but (without systemd) does not start it.
if command -v pg_lsclusters >/dev/null 2>&1; then
  read -r ver name _ < <(pg_lsclusters -h | head -n1) || true
  if [ -n "${ver:-}" ] && ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
    echo "ci-system-deps: starting PostgreSQL cluster $ver/$name"
    pg_ctlcluster "$ver" "$name" start
  fi
fi
echo "ci-system-deps: chromium $(command -v chromium || echo missing), postgresql" \
     "$(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2" "$4}' | head -n1 || echo missing)"
