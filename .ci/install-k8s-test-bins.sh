#!/usr/bin/env bash
# .ci/install-k8s-test-bins.sh — real kube-apiserver + kube-controller-manager v1.20.2 from Debian's source package.
set -euo pipefail
K8S_BIN_DIR=${K8S_BIN_DIR:-/var/cache/k8s-test-bin/v1.20.2-deb12}
export DEBIAN_FRONTEND=noninteractive
if [ -x "$K8S_BIN_DIR/kube-apiserver" ] && [ -x "$K8S_BIN_DIR/kube-controller-manager" ] && command -v etcd >/dev/null; then
  echo "k8s test binaries already in $K8S_BIN_DIR"; exit 0
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends golang-1.19-go rsync jq etcd-server openssl curl ca-certificates make >/dev/null
WORK=$(mktemp -d /tmp/k8s-build.XXXXXX); trap 'rm -rf "$WORK"' EXIT; cd "$WORK"
mkdir -p apt/lists/partial apt/cache/archives/partial
# private copy of the machine's own Debian source list with deb-src enabled; system config untouched
mkdir -p apt/sources.list.d
sed 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources > apt/sources.list.d/debian.sources
APT=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$WORK/apt/sources.list.d"
     -o Dir::State::Lists="$WORK/apt/lists" -o Dir::Cache="$WORK/apt/cache")
apt-get "${APT[@]}" update -qq
apt-get "${APT[@]}" source --download-only kubernetes 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
echo "b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc  kubernetes_1.20.5+really1.20.2.orig.tar.gz" | sha256sum -c -
tar xzf kubernetes_1.20.5+really1.20.2.orig.tar.gz
# vendored reflect2 v1.0.1 SIGSEGVs under Go >= 1.18; use Debian's reflect2 1.0.2 (code only, not its go.mod)
apt-get download golang-github-modern-go-reflect2-dev 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
dpkg-deb -x golang-github-modern-go-reflect2-dev_*.deb reflect2
R=kubernetes-1.20.2/vendor/github.com/modern-go/reflect2; S=reflect2/usr/share/gocode/src/github.com/modern-go/reflect2
rm -f "$R"/*.go "$R"/*.s; cp "$S"/*.go "$S"/*.s "$R"/
cd kubernetes-1.20.2
env PATH=/usr/lib/go-1.19/bin:$PATH HOME="$WORK/home" CGO_ENABLED=0 \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log"; exit 1; }
mkdir -p "$K8S_BIN_DIR"
install -m755 _output/bin/kube-apiserver _output/bin/kube-controller-manager "$K8S_BIN_DIR/"
"$K8S_BIN_DIR/kube-apiserver" --version     # -> Kubernetes v1.20.2
