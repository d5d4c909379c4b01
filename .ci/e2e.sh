#!/usr/bin/env bash
# make e2e (also the last stage of `make test`): the chart installed by helm into a real node.
#
#   1. the operator image: the Dockerfile's runtime stage around the binary `cargo test` built
#      (.ci/image.sh prebuilt), twice — a second build with another label is the image `helm upgrade`
#      moves to. With E2E_DOCKERFILE=1 (make image-test) the upgrade target is instead the image the
#      project's real Dockerfile builds (.ci/image.sh dockerfile).
#   2. a real single-node Kubernetes v1.20.2 with both images imported (.ci/node-env.sh start)
#   3. tests/node.rs against it: helm install, Ready, examples, LifecycleRun, /metrics via the Service,
#      the process's security context, helm upgrade, the NetworkPolicy, helm uninstall
#   4. the node stopped by PID whatever happened, then the host checked to be as the node found it.
#
# Needs root (kubelet, containerd, iptables); one real node per machine at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
[ "${E2E_SKIP_DEPS:-0}" = 1 ] || bash .ci/install-deps.sh

export K8S_BIN_DIR=${K8S_BIN_DIR:-/var/cache/k8s-test-bin/v1.20.2-deb12}
NODE_DIR=${NODE_DIR:-$PWD/target/node-env}
export NODE_IP=${NODE_IP:-10.255.255.1}
# The node's own etcd and API server ports (the API server binds NODE_IP only); apart from the shared
# test API server's (23790/23800/16443) so both run during `make test`.
export ETCD_PORT=${NODE_ETCD_PORT:-23795} ETCD_PEER_PORT=${NODE_ETCD_PEER_PORT:-23805} API_PORT=${NODE_API_PORT:-6443}

# The binary `cargo test` built (a no-op then), and the test binary.
cargo build --quiet --bin seatwarden
cargo test --quiet --test node --no-run
IMG=$PWD/target/e2e-images; mkdir -p "$IMG"
bash .ci/image.sh prebuilt target/debug/seatwarden localhost/seatwarden:e2e-a "$IMG/a.tar"
if [ "${E2E_DOCKERFILE:-0}" = 1 ]; then
  bash .ci/image.sh dockerfile localhost/seatwarden:dockerfile "$IMG/b.tar"
  IMAGE_B=localhost/seatwarden:dockerfile
else
  LABEL=seatwarden.e2e/build=b bash .ci/image.sh prebuilt target/debug/seatwarden localhost/seatwarden:e2e-b "$IMG/b.tar"
  IMAGE_B=localhost/seatwarden:e2e-b
fi
echo "== e2e images ready at $(( $(date +%s) - T0 )) s"

finish() {
  rc=$?
  trap - EXIT
  bash .ci/node-env.sh stop "$NODE_DIR"
  if ! bash .ci/node-env.sh check "$NODE_DIR"; then
    [ $rc = 0 ] && rc=1
  fi
  echo "== e2e done in $(( $(date +%s) - T0 )) s (rc=$rc)"
  exit $rc
}
trap finish EXIT
IMAGES="$IMG/a.tar $IMG/b.tar" bash .ci/node-env.sh start "$NODE_DIR"
echo "== node Ready at $(( $(date +%s) - T0 )) s"

SEATWARDEN_NODE_DIR=$NODE_DIR SEATWARDEN_NODE_IP=$NODE_IP \
SEATWARDEN_E2E_IMAGE_A=localhost/seatwarden:e2e-a SEATWARDEN_E2E_IMAGE_B=$IMAGE_B \
  cargo test --test node -- --ignored --test-threads=1 --nocapture
