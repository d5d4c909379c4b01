#!/usr/bin/env bash
# .ci/node-env.sh start|stop|check DIR — a real single-node Kubernetes v1.20.2 cluster on this machine:
# etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kubelet + kube-proxy (iptables),
# Debian's containerd 1.6 + runc + the CNI bridge plugin. Binaries from .ci/install-k8s-test-bins.sh.
#
# Everything lives under DIR and every process is started and stopped by PID. What the node has to
# change on the host is undone by `stop`: the sysctls kubelet, kube-proxy and the bridge plugin set,
# the KUBE-*/CNI-* iptables chains, the cni0 bridge, the node address on lo, the paths kubelet and
# containerd hard-code outside DIR (only those that did not exist before). `check` verifies that the
# host is back as `start` found it. Root is required; one node per machine (the lock below), since
# kube-proxy's chains and kubelet's ports are host-wide.
#
# Network: the node address NODE_IP is a /32 on lo — pods reach it through cni0, nothing is exposed
# on the machine's interfaces. etcd, containerd's stream server and the health ports listen on
# 127.0.0.1, kube-apiserver and kubelet on NODE_IP only.
#
# The recipe, every failure met on the way and its fix: ../shared/reference/real-node.md.
set -euo pipefail
CMD=${1:?start|stop|check}
DIR=${2:?directory}
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${K8S_BIN_DIR:-/var/cache/k8s-test-bin/v1.20.2-deb12}
NODE_IP=${NODE_IP:-10.255.255.1}
NODE_NAME=${NODE_NAME:-seatwarden-node}
ETCD_PORT=${ETCD_PORT:-23795}; ETCD_PEER_PORT=${ETCD_PEER_PORT:-23805}; API_PORT=${API_PORT:-6443}
POD_CIDR=${POD_CIDR:-10.244.0.0/24}; SVC_CIDR=${SVC_CIDR:-10.0.0.0/24}
BRIDGE=${BRIDGE:-cni0}
# Pods' cgroups go below this root (…/<root>/kubepods/…), away from anything else on the machine.
CGROUP_ROOT=${CGROUP_ROOT:-/seatwarden-node}
CTRD=$DIR/containerd; SOCK=$CTRD/containerd.sock
LOCK=/run/seatwarden-node.lock   # holds the DIR of the node that runs
# Sysctls kubelet (overcommit, panic), kube-proxy (route_localnet) and the bridge plugin (forwarding)
# set; saved at start, written back at stop.
SYSCTLS="net/ipv4/ip_forward net/ipv4/conf/all/forwarding net/ipv4/conf/default/forwarding
  net/ipv4/conf/all/route_localnet net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables
  vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys
  kernel/keys/root_maxbytes"
# Paths kubelet 1.20 / containerd 1.6 / libcni use whatever their flags say.
HOST_PATHS="/var/log/pods /var/log/containers /var/lib/kubelet /run/containerd /var/lib/cni /etc/cni
  /usr/libexec/kubernetes /opt/cni"

C() { ctr -a "$SOCK" -n k8s.io "$@"; }

stop_pid() {
  local f=$DIR/$1.pid; [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

iptables_chains() {   # tool table -> chains named KUBE-*/CNI-* (created by kubelet, kube-proxy, the bridge plugin)
  "$1" -t "$2" -S 2>/dev/null | awk '$1=="-N" && ($2 ~ /^(KUBE-|CNI-)/){print $2}'
}

stop() {
  set +e
  # kubelet first, or it re-creates the containers killed below
  for p in kubelet kube-proxy scheduler kcm; do stop_pid "$p"; done
  if [ -S "$SOCK" ] && [ -f "$DIR/containerd.pid" ]; then
    for t in $(C tasks ls -q 2>/dev/null); do C tasks kill -s KILL "$t" >/dev/null 2>&1; done
    sleep 1
    for t in $(C tasks ls -q 2>/dev/null); do C tasks delete -f "$t" >/dev/null 2>&1; done   # its shim exits too
  fi
  # Safety nets: whatever is left in this node's pod cgroups, then shims bound to this socket (by PID;
  # the runc v2 shim writes no pid file).
  for f in $(find "/sys/fs/cgroup/pids$CGROUP_ROOT" -name cgroup.procs 2>/dev/null); do
    for pid in $(cat "$f"); do kill -9 "$pid" 2>/dev/null; done
  done
  for d in /proc/[0-9]*; do
    { tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null | grep -q "^/usr/bin/containerd-shim-runc-v2 .*-address $SOCK " \
      && kill -9 "${d#/proc/}" 2>/dev/null
  done
  for p in sim apiserver etcd containerd; do stop_pid "$p"; done
  if [ -f "$DIR/started" ]; then
    [ -x "$BIN/kube-proxy" ] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
    for ipt in iptables ip6tables; do
      for t in nat filter mangle; do
        chains=$(iptables_chains $ipt $t)
        for ch in $chains; do   # the jumps into them from the built-in chains
          $ipt -t $t -S 2>/dev/null | grep -E -- "-j $ch( |$)" | sed 's/^-A/-D/' \
            | while read -r r; do eval $ipt -t $t "$r"; done
        done
        for ch in $chains; do $ipt -t $t -F "$ch" 2>/dev/null; done
        for ch in $chains; do $ipt -t $t -X "$ch" 2>/dev/null; done
      done
    done
    ip link del "$BRIDGE" 2>/dev/null
    for v in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip -d link show "$v" 2>/dev/null | grep -q "master $BRIDGE" && ip link del "$v" 2>/dev/null
    done
    ip addr del "$NODE_IP/32" dev lo 2>/dev/null
    # pod netns (under the state dir: netns_mounts_under_state_dir), kubelet's volume mounts, overlay rootfs
    grep -E " $DIR[^ ]* " /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    # pod cgroups below this node's root
    for c in /sys/fs/cgroup/*"$CGROUP_ROOT"; do
      [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    [ -f "$DIR/sysctl.saved" ] && while IFS='=' read -r k v; do
      [ "$(cat "/proc/sys/$k" 2>/dev/null)" = "$v" ] || echo "$v" > "/proc/sys/$k"
    done < "$DIR/sysctl.saved"
    [ -f "$DIR/host-paths.absent" ] && for p in $(cat "$DIR/host-paths.absent"); do rm -rf "$p"; done
    rm -f "$DIR/started"
  fi
  [ -f "$LOCK" ] && [ "$(cat "$LOCK" 2>/dev/null)" = "$DIR" ] && rm -f "$LOCK"
  set -e
  return 0
}

# What `check` compares: the host's network, firewall and sysctl state without this node.
host_state() {
  for k in $SYSCTLS; do [ -e "/proc/sys/$k" ] && echo "sysctl $k=$(cat "/proc/sys/$k")"; done
  ip -o addr show dev lo | awk '{print "lo", $3, $4}'
  ip -o link show | awk -F': ' '{print "link", $2}' | cut -d@ -f1
  for ipt in iptables ip6tables; do
    for t in nat filter mangle; do $ipt -t $t -S 2>/dev/null | sed "s/^/$ipt $t /"; done
  done
  for p in $HOST_PATHS; do [ -e "$p" ] && echo "path $p"; done
  ls -d /sys/fs/cgroup/*"$CGROUP_ROOT" 2>/dev/null | sed "s/^/cgroup /" || true
  true
}

case "$CMD" in
  stop) stop; exit 0 ;;
  check)
    # After stop: the host as start found it, and no process of this node left.
    [ -f "$DIR/host.before" ] || { echo "no $DIR/host.before (was the node started?)"; exit 1; }
    if ! diff <(cat "$DIR/host.before") <(host_state) >"$DIR/host.diff"; then
      echo "host state differs from before the node started:"; cat "$DIR/host.diff"; exit 1
    fi
    # (this script and its subshells name DIR too: not counted)
    left=$(for d in /proc/[0-9]*; do
      c=$({ tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null || true)
      case "$c" in *node-env.sh*) continue ;; *"$DIR"*) echo "${d#/proc/} $c" ;; esac
    done)
    [ -z "$left" ] || { echo "processes of this node still running: $left"; exit 1; }
    echo "host restored: sysctls, lo addresses, links, iptables, host paths and cgroups as before; no process left"
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop|check DIR"; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "the real node needs root"; exit 1; }
for b in kube-apiserver kube-controller-manager kubelet kube-scheduler kube-proxy pause; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: run .ci/install-k8s-test-bins.sh"; exit 1; }
done
if [ -f "$LOCK" ] && [ "$(cat "$LOCK")" != "$DIR" ]; then
  other=$(cat "$LOCK")
  if [ -f "$other/kubelet.pid" ] && kill -0 "$(cat "$other/kubelet.pid")" 2>/dev/null; then
    echo "another real node runs on this machine ($other); one at a time (kube-proxy's iptables chains and kubelet's ports are host-wide)"
    exit 1
  fi
fi
stop
rm -rf "$DIR"; mkdir -p "$DIR"/{pki,logs,cni/net.d,cni/ipam,kubelet,containerd,images}
echo "$DIR" > "$LOCK"
host_state > "$DIR/host.before"
for k in $SYSCTLS; do [ -e "/proc/sys/$k" ] && echo "$k=$(cat "/proc/sys/$k")"; done > "$DIR/sysctl.saved"
for p in $HOST_PATHS; do [ -e "$p" ] || echo "$p"; done > "$DIR/host-paths.absent"
touch "$DIR/started"
fail() { echo "$1"; [ -n "${2:-}" ] && tail -40 "$DIR/logs/$2.log"; stop; exit 1; }
T0=$(date +%s%N); ms() { echo $(( ($(date +%s%N) - T0) / 1000000 )); }
ip addr add "$NODE_IP/32" dev lo

# --- PKI: CA, apiserver leaf with the service IP as SAN (pods reach it as https://10.0.0.1:443) ---
cd "$DIR/pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=seatwarden-node-ca -keyout ca.key -out ca.crt \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr 2>/dev/null
SVC_IP=${SVC_CIDR%.*}.1
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' "$NODE_IP" "$SVC_IP" > ext.cnf
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile ext.cnf -out apiserver.crt 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
TOKEN=$(openssl rand -hex 16); echo "$TOKEN,admin,admin,\"system:masters\"" > tokens.csv
cat > "$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: node
  cluster: {server: "https://$NODE_IP:$API_PORT", certificate-authority: "$DIR/pki/ca.crt"}
users:
- name: admin
  user: {token: "$TOKEN"}
contexts:
- name: node
  context: {cluster: node, user: admin, namespace: default}
current-context: node
KC
chmod 600 "$DIR/kubeconfig" tokens.csv
export KUBECONFIG=$DIR/kubeconfig

# --- the pause (sandbox) image: the static pause from the same source tree, one layer, no registry ---
mkdir -p "$DIR/images/pause-rootfs"
cp "$BIN/pause" "$DIR/images/pause-rootfs/pause"
python3 "$HERE/mkimage.py" --rootfs "$DIR/images/pause-rootfs" --tag seatwarden.local/pause:3.2 \
  --entrypoint '["/pause"]' --user 65535:65535 --out "$DIR/images/pause.tar" >/dev/null

# --- containerd (own root/state/socket under DIR), CNI bridge conflist ---
cat > "$DIR/cni/net.d/10-seatwarden.conflist" <<CNI
{ "cniVersion": "0.4.0", "name": "seatwarden",
  "plugins": [
    { "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": "$DIR/cni/ipam" } },
    { "type": "portmap", "capabilities": {"portMappings": true} } ] }
CNI
cat > "$CTRD/config.toml" <<TOML
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "seatwarden.local/pause:3.2"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # Root on the CI VM lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below containerd's own
  # (pause asks for -998) and fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "${SNAPSHOTTER:-overlayfs}"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CTRD/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
TOML
containerd --config "$CTRD/config.toml" >"$DIR/logs/containerd.log" 2>&1 &
echo $! > "$DIR/containerd.pid"
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "containerd did not start" containerd
C images import "$DIR/images/pause.tar" >/dev/null
for img in ${IMAGES:-}; do C images import "$img" >/dev/null; done
echo "containerd up, images imported at $(ms) ms"

# --- etcd + kube-apiserver (bound to NODE_IP only) ---
etcd --name node --data-dir "$DIR/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "node=http://127.0.0.1:$ETCD_PEER_PORT" >"$DIR/logs/etcd.log" 2>&1 &
echo $! > "$DIR/etcd.pid"
"$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" --insecure-port=0 \
  --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
  --client-ca-file="$DIR/pki/ca.crt" --token-auth-file="$DIR/pki/tokens.csv" \
  --service-account-key-file="$DIR/pki/sa.pub" --service-account-signing-key-file="$DIR/pki/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range="$SVC_CIDR" --authorization-mode=Node,RBAC --allow-privileged=true \
  --kubelet-preferred-address-types=InternalIP >"$DIR/logs/kube-apiserver.log" 2>&1 &
echo $! > "$DIR/apiserver.pid"
for i in $(seq 1 600); do
  curl -fsS --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" "https://$NODE_IP:$API_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$DIR/apiserver.pid")" 2>/dev/null || fail "kube-apiserver died" kube-apiserver
  [ "$i" = 600 ] && fail "kube-apiserver not ready after 60s" kube-apiserver
  sleep 0.1
done
echo "kube-apiserver ready at $(ms) ms"

# --- controllers (all default ones: deployments, replicasets, SA tokens, endpoints, GC, ...) + scheduler ---
"$BIN/kube-controller-manager" --kubeconfig="$KUBECONFIG" --leader-elect=false --port=0 --secure-port=0 \
  --use-service-account-credentials=false --service-account-private-key-file="$DIR/pki/sa.key" \
  --root-ca-file="$DIR/pki/ca.crt" --flex-volume-plugin-dir="$DIR/kubelet/volume-plugins" \
  >"$DIR/logs/kube-controller-manager.log" 2>&1 &
echo $! > "$DIR/kcm.pid"
"$BIN/kube-scheduler" --kubeconfig="$KUBECONFIG" --leader-elect=false --port=0 --secure-port=0 \
  >"$DIR/logs/kube-scheduler.log" 2>&1 &
echo $! > "$DIR/scheduler.pid"

# --- kubelet (cgroupfs driver on cgroup v1, remote runtime = containerd) + kube-proxy (iptables) ---
# kubelet wants its cgroup root to exist in every hierarchy; cpuset needs its cpus/mems filled in.
for h in /sys/fs/cgroup/*/; do
  [ -f "$h/cgroup.procs" ] || continue
  mkdir -p "$h${CGROUP_ROOT#/}"
  if [ -f "$h/cpuset.cpus" ]; then
    cat "$h/cpuset.cpus" > "$h${CGROUP_ROOT#/}/cpuset.cpus"; cat "$h/cpuset.mems" > "$h${CGROUP_ROOT#/}/cpuset.mems"
  fi
done
cat > "$DIR/kubelet/config.yaml" <<KCFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: ${KUBELET_PORT:-10250}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${KUBELET_HEALTHZ_PORT:-10248}
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failSwapOn: false
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}, x509: {}}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# Report status every 2 s instead of 10 s: the node is Ready that much sooner.
nodeStatusUpdateFrequency: 2s
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
KCFG
"$BIN/kubelet" --config="$DIR/kubelet/config.yaml" --kubeconfig="$KUBECONFIG" \
  --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
  --root-dir="$DIR/kubelet/root" --cert-dir="$DIR/kubelet/pki" --volume-plugin-dir="$DIR/kubelet/volume-plugins" \
  --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" >"$DIR/logs/kubelet.log" 2>&1 &
echo $! > "$DIR/kubelet.pid"
"$BIN/kube-proxy" --kubeconfig="$KUBECONFIG" --hostname-override="$NODE_NAME" --proxy-mode=iptables \
  --cluster-cidr="$POD_CIDR" --bind-address="$NODE_IP" --metrics-bind-address="127.0.0.1:${KUBE_PROXY_METRICS_PORT:-10249}" \
  --healthz-bind-address="127.0.0.1:${KUBE_PROXY_HEALTHZ_PORT:-10256}" --conntrack-max-per-core=0 \
  --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 >"$DIR/logs/kube-proxy.log" 2>&1 &
echo $! > "$DIR/kube-proxy.pid"

for i in $(seq 1 1200); do
  # (no kubectl needed: the API answers curl, jq reads it)
  ready=$(curl -fsS --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" \
    "https://$NODE_IP:$API_PORT/api/v1/nodes/$NODE_NAME" 2>/dev/null \
    | jq -r '.status.conditions[]? | select(.type=="Ready") | .status' 2>/dev/null || true)
  [ "$ready" = True ] && break
  for p in kubelet:kubelet kcm:kube-controller-manager scheduler:kube-scheduler kube-proxy:kube-proxy; do
    kill -0 "$(cat "$DIR/${p%%:*}.pid")" 2>/dev/null || fail "${p#*:} died:" "${p#*:}"
  done
  [ "$i" = 1200 ] && fail "node not Ready after 120s" kubelet
  sleep 0.1
done
echo "node $NODE_NAME Ready at $(ms) ms; KUBECONFIG=$KUBECONFIG"
