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
