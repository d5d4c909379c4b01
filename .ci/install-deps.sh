#!/usr/bin/env bash
# Installs everything the tests need, idempotently, caching outside the clone so a second run
# skips the work. Safe to run on a fresh Debian 12 machine as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# Real kube-apiserver v1.20.2 (built from Debian's source package) + etcd; cached in /var/cache.
bash .ci/install-k8s-test-bins.sh

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v etcd >/dev/null || need_apt+=(etcd-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# aiosmtpd, the real SMTP server tests/notify.rs starts, in a venv cached outside the clone (Debian's
# system Python refuses pip installs). The tests find it at this path or at $SEATWARDEN_SMTPD_PYTHON.
SMTPD_VENV=/var/cache/seatwarden-ci/aiosmtpd-venv
if ! "$SMTPD_VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
  if ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  fi
  rm -rf "$SMTPD_VENV"
  mkdir -p "$(dirname "$SMTPD_VENV")"
  /usr/bin/python3 -m venv "$SMTPD_VENV"
  "$SMTPD_VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6'
fi
