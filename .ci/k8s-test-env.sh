#!/usr/bin/env bash
# .ci/k8s-test-env.sh start|stop [DIR] — etcd + kube-apiserver (+ kube-controller-manager if WITH_KCM=1) on 127.0.0.1
set -euo pipefail
CMD=${1:?start|stop}; DIR=${2:-${K8S_TEST_DIR:-/tmp/k8s-test-env}}
BIN=${K8S_BIN_DIR:-/var/cache/k8s-test-bin/v1.20.2-deb12}
ETCD_PORT=${ETCD_PORT:-23790}; ETCD_PEER_PORT=${ETCD_PEER_PORT:-23800}; API_PORT=${API_PORT:-16443}
stop() { for p in kcm apiserver etcd; do [ -f "$DIR/$p.pid" ] || continue; pid=$(cat "$DIR/$p.pid"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; kill -9 "$pid" 2>/dev/null || true; rm -f "$DIR/$p.pid"; done; }
if [ "$CMD" = stop ]; then stop; exit 0; fi
stop; rm -rf "$DIR"; mkdir -p "$DIR/pki" "$DIR/logs"; cd "$DIR/pki"
# CA + serving cert with IP SAN (rustls in kube-rs rejects a CA cert used as the leaf, so make a real CA/leaf pair)
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=k8s-test-ca -keyout ca.key -out ca.crt \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > ext.cnf
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile ext.cnf -out apiserver.crt 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
TOKEN=$(openssl rand -hex 16); echo "$TOKEN,admin,admin,\"system:masters\"" > tokens.csv
cat > "$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$DIR/pki/ca.crt"}
users:
- name: admin
  user: {token: "$TOKEN"}
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
KC
T0=$(date +%s%N)
etcd --name test --data-dir "$DIR/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "test=http://127.0.0.1:$ETCD_PEER_PORT" >"$DIR/logs/etcd.log" 2>&1 &
echo $! > "$DIR/etcd.pid"
"$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --insecure-port=0 \
  --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
  --client-ca-file="$DIR/pki/ca.crt" --token-auth-file="$DIR/pki/tokens.csv" \
  --service-account-key-file="$DIR/pki/sa.pub" --service-account-signing-key-file="$DIR/pki/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=RBAC --allow-privileged=true \
  --disable-admission-plugins=ServiceAccount >"$DIR/logs/kube-apiserver.log" 2>&1 &
echo $! > "$DIR/apiserver.pid"
for i in $(seq 1 600); do
  curl -fsS --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$DIR/apiserver.pid")" 2>/dev/null || { tail -40 "$DIR/logs/kube-apiserver.log"; stop; exit 1; }
  [ "$i" = 600 ] && { echo "kube-apiserver not ready after 60s"; tail -40 "$DIR/logs/kube-apiserver.log"; stop; exit 1; }
  sleep 0.1
done
echo "kube-apiserver ready in $(( ($(date +%s%N) - T0) / 1000000 )) ms; KUBECONFIG=$DIR/kubeconfig"
if [ "${WITH_KCM:-0}" = 1 ]; then   # only GC + namespace deletion; no serving ports
  "$BIN/kube-controller-manager" --kubeconfig="$DIR/kubeconfig" --controllers=garbagecollector,namespace \
    --leader-elect=false --port=0 --secure-port=0 --use-service-account-credentials=false \
    >"$DIR/logs/kube-controller-manager.log" 2>&1 &
  echo $! > "$DIR/kcm.pid"
fi
