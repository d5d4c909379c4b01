#!/usr/bin/env bash
# .ci/install-k8s-test-bins.sh — Kubernetes v1.20.2 from Debian's source package, cached in
# $K8S_BIN_DIR: kube-apiserver + kube-controller-manager (the shared test API server) and kubelet,
# kube-scheduler, kube-proxy + a static `pause` (the real node of the e2e stage, .ci/node-env.sh).
# Builds only what is missing, so a cache made before the node binaries existed is completed, not
# rebuilt. K8S_BINS limits what is wanted (e.g. "kubelet kube-scheduler kube-proxy pause").
set -euo pipefail
K8S_BIN_DIR=${K8S_BIN_DIR:-/var/cache/k8s-test-bin/v1.20.2-deb12}
K8S_BINS=${K8S_BINS:-kube-apiserver kube-controller-manager kubelet kube-scheduler kube-proxy pause}
export DEBIAN_FRONTEND=noninteractive
missing=()
for b in $K8S_BINS; do [ -x "$K8S_BIN_DIR/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ] && command -v etcd >/dev/null; then
  echo "k8s test binaries already in $K8S_BIN_DIR"; exit 0
fi
T0=$(date +%s)
pkgs=()
for p in golang-1.19-go rsync jq etcd-server openssl curl ca-certificates make gcc libc6-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || pkgs+=("$p")
done
if [ ${#pkgs[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "building ${missing[*]} into $K8S_BIN_DIR"
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
what=(); for b in "${missing[@]}"; do [ "$b" = pause ] || what+=("cmd/$b"); done
mkdir -p "$K8S_BIN_DIR"
if [ ${#what[@]} -gt 0 ]; then
  # nice: the machine is shared with the test build; this is a one-time cost, cached afterwards.
  env PATH=/usr/lib/go-1.19/bin:$PATH HOME="$WORK/home" CGO_ENABLED=0 \
    nice -n 10 make WHAT="${what[*]}" >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log"; exit 1; }
  for b in "${missing[@]}"; do [ "$b" = pause ] || install -m755 "_output/bin/$b" "$K8S_BIN_DIR/"; done
fi
if [[ " ${missing[*]} " == *" pause "* ]]; then
  # The pod sandbox image's one binary, from the same tree (no registry serves registry.k8s.io/pause here).
  gcc -Os -Wall -static -DVERSION=3.2-seatwarden -o "$K8S_BIN_DIR/pause" build/pause/linux/pause.c
  strip "$K8S_BIN_DIR/pause"
fi
for b in "${missing[@]}"; do
  [ "$b" = pause ] && continue
  "$K8S_BIN_DIR/$b" --version     # -> Kubernetes v1.20.2
done
echo "k8s binaries built in $(( $(date +%s) - T0 )) s"
