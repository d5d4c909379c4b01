#!/usr/bin/env bash
# The body of `make test`. One shared etcd + kube-apiserver for the whole run, stopped by PID at the
# end whatever the tests did; the exit status is the tests'.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)

bash .ci/install-deps.sh
echo "== deps ready in $(( $(date +%s) - T0 )) s"

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
echo "== fmt + clippy done at $(( $(date +%s) - T0 )) s"

export K8S_BIN_DIR=${K8S_BIN_DIR:-/var/cache/k8s-test-bin/v1.20.2-deb12}
export K8S_ENV="$PWD/target/k8s-test-env"
# Ports away from the defaults, so a developer's own test cluster doesn't collide.
export ETCD_PORT=${ETCD_PORT:-23790} ETCD_PEER_PORT=${ETCD_PEER_PORT:-23800} API_PORT=${API_PORT:-16443}
trap 'bash .ci/k8s-test-env.sh stop "$K8S_ENV"' EXIT
bash .ci/k8s-test-env.sh start "$K8S_ENV"
export KUBECONFIG="$K8S_ENV/kubeconfig"
export SEATWARDEN_SHARED_DIR=${SEATWARDEN_SHARED_DIR:-$(cd .. && pwd)/shared}

rc=0
cargo test --all-targets --no-fail-fast || rc=$?
echo "== all tests done in $(( $(date +%s) - T0 )) s (rc=$rc)"

# The chart installed by helm into a real node (make e2e), run even when a test above failed, so
# one report shows both.
T1=$(date +%s)
E2E_SKIP_DEPS=1 bash .ci/e2e.sh || { e2e_rc=$?; [ $rc = 0 ] && rc=$e2e_rc; }
echo "== e2e stage took $(( $(date +%s) - T1 )) s; make test done in $(( $(date +%s) - T0 )) s"
exit $rc
