#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: everything the tests need is installed or started
# from here, and a test whose tool is missing fails loudly (nothing is skipped).
#
# Installs when missing (Debian, as root): prometheus (prometheus, promtool) and
# prometheus-alertmanager (prometheus-alertmanager, amtool), chromium (headless screenshots of
# the report and the status page), postgresql (server binaries). The tests start their own
# Prometheus and Alertmanager processes on free loopback ports and stop them; this script starts
# a throwaway PostgreSQL cluster (scripts/pg-cluster.sh: initdb/pg_ctl as the `postgres` OS user
# on a free loopback port, in a temporary directory), hands its URL to the tests in
# FLYWHEEL_TEST_DATABASE_URL, and stops and removes it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v mkfs.ext4 >/dev/null 2>&1 && command -v e2fsck >/dev/null 2>&1 || need+=(e2fsprogs)
command -v losetup >/dev/null 2>&1 || need+=(mount)
if [ "${#need[@]}" -gt 0 ]; then
    echo "test.sh: installing ${need[*]} (apt-get)" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: need root to install ${need[*]}; install them or run as root" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

pgdir=$(mktemp -d /tmp/flywheel-pg.XXXXXX)
trap 'scripts/pg-cluster.sh stop "$pgdir"' EXIT
FLYWHEEL_TEST_DATABASE_URL=$(scripts/pg-cluster.sh start "$pgdir")
export FLYWHEEL_TEST_DATABASE_URL
echo "test.sh: PostgreSQL for the tests at $FLYWHEEL_TEST_DATABASE_URL" >&2

cargo test --locked "$@"

# Coverage-guided fuzzing, bounded: every target for FLYWHEEL_FUZZ_SECS (20) seconds. A filtered
# run (arguments given) is a developer's quick loop and leaves it out, saying so.
if [ "$#" -eq 0 ]; then
    scripts/fuzz.sh "${FLYWHEEL_FUZZ_SECS:-20}"
else
    echo "test.sh: filtered run; fuzz targets not run (scripts/fuzz.sh runs them)" >&2
fi
