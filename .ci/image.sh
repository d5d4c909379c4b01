#!/usr/bin/env bash
# .ci/image.sh — the operator image, built with buildah with no registry and no daemon.
#
#   image.sh bases                   the Dockerfile's two FROM images, made locally under exactly the
#                                    names the Dockerfile uses (the runtime base always; the builder
#                                    base only with BUILDER=1)
#   image.sh prebuilt BIN TAG OUT    the Dockerfile's runtime stage around a binary already built
#                                    (the one `cargo test` built): CI's e2e image
#   image.sh dockerfile TAG OUT      the project's real Dockerfile, unmodified: `buildah bud
#                                    --pull=never` (make image-test)
#
# OUT is a docker-archive that `ctr images import` reads. Storage and the base images are cached in
# $SEATWARDEN_CI_CACHE/buildah, so a second run reuses them; `RUN --mount=type=cache` directories
# (cargo registry + target) are kept there too.
#
# The runtime base is built the way distroless builds cc-debian12: Debian 12's own libc6, libgcc-s1,
# base-files, netbase and tzdata unpacked into an empty root, a CA bundle, passwd/group with
# nonroot:65532, no shell, no package manager. The CA bundle is this machine's (Debian's plus the
# CAs the machine adds), as a platform team's image build would use.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${SEATWARDEN_CI_CACHE:-/var/cache/seatwarden-ci}
BH=$CACHE/buildah
mkdir -p "$BH/storage" "$BH/tmp" /run/seatwarden-buildah
# buildah puts RUN --mount=type=cache directories below $TMPDIR; keep them in the cache.
export TMPDIR=$BH/tmp
BUILDAH=(buildah --root "$BH/storage" --runroot /run/seatwarden-buildah --storage-driver overlay)
bh() { "${BUILDAH[@]}" "$@"; }
has_image() { bh images --quiet "$1" >/dev/null 2>&1 && [ -n "$(bh images --quiet "$1" 2>/dev/null)" ]; }

# The names come from the Dockerfile itself, so the local bases follow it when it changes.
BUILDER_IMAGE=$(awk '$1=="FROM"{print $2; exit}' Dockerfile)
RUNTIME_IMAGE=$(awk '$1=="FROM"{img=$2} END{print img}' Dockerfile)

runtime_base() {
  has_image "$RUNTIME_IMAGE" && return 0
  local t0; t0=$(date +%s)
  local w; w=$(mktemp -d /tmp/seatwarden-runtime.XXXXXX)
  (
    cd "$w"
    apt-get download libc6 libgcc-s1 base-files netbase tzdata 2>&1 | grep -v '^W: Download is performed unsandboxed' >/dev/null || true
    R=ctx/rootfs; mkdir -p "$R"
    for d in ./*.deb; do dpkg-deb -x "$d" "$R"; done
    rm -rf "$R"/usr/share/{doc,man,lintian,locale,info}
    mkdir -p "$R/etc/ssl/certs" "$R/tmp" "$R/home/nonroot"
    chmod 1777 "$R/tmp"; chown 65532:65532 "$R/home/nonroot"
    cp -L /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$R/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n' > "$R/etc/group"
    printf 'FROM scratch\nCOPY rootfs/ /\nUSER 65532:65532\nWORKDIR /home/nonroot\n' > ctx/Containerfile
    bh bud --quiet --pull=never -t "$RUNTIME_IMAGE" ctx >/dev/null
  )
  rm -rf "$w"
  echo "runtime base $RUNTIME_IMAGE built in $(( $(date +%s) - t0 )) s"
}

builder_base() {
  has_image "$BUILDER_IMAGE" && return 0
  local t0; t0=$(date +%s)
  # The Rust release the Dockerfile names (rust:1.95-...): the host's toolchain of that version, since
  # no registry serves Rust toolchains here.
  local want; want=$(echo "$BUILDER_IMAGE" | sed -E 's/.*:([0-9]+\.[0-9]+).*/\1/')
  local sysroot; sysroot=$(rustc +"$want" --print sysroot 2>/dev/null || rustc --print sysroot)
  "$sysroot/bin/rustc" --version | grep -q "^rustc $want\." \
    || { echo "no Rust $want toolchain on this machine for $BUILDER_IMAGE ($("$sysroot/bin/rustc" --version))"; exit 1; }
  local full; full=$("$sysroot/bin/rustc" --version | awk '{print $2}')
  command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  local w; w=$(mktemp -d /tmp/seatwarden-builder.XXXXXX)
  local mirror; mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  (
    cd "$w"
    mkdir -p min ctx
    debootstrap --variant=minbase bookworm min "${mirror:-http://deb.debian.org/debian}" >debootstrap.log 2>&1 \
      || { tail -20 debootstrap.log; exit 1; }
    tar -C min -cf ctx-min.tar .
    mkdir -p minctx && mv ctx-min.tar minctx/ && printf 'FROM scratch\nADD ctx-min.tar /\n' > minctx/Containerfile
    bh bud --quiet --pull=never -t localhost/seatwarden-bookworm-minbase:latest minctx >/dev/null
    mkdir -p ctx/extra-ca ctx/toolchain
    cp /usr/local/share/ca-certificates/*.crt ctx/extra-ca/ 2>/dev/null || true
    rsync -a --exclude share "$sysroot/" ctx/toolchain/
    cat > ctx/Containerfile <<CF
FROM localhost/seatwarden-bookworm-minbase:latest
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev ca-certificates >/dev/null \\
 && rm -rf /var/lib/apt/lists/*
# HTTPS to the crate registry goes through this machine's extra CAs: trust them, as the host does.
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
COPY toolchain /usr/local/rustup/toolchains/$full-x86_64-unknown-linux-gnu
RUN mkdir -p /usr/local/cargo/bin && for b in /usr/local/rustup/toolchains/$full-x86_64-unknown-linux-gnu/bin/*; do \\
      ln -s "\$b" /usr/local/cargo/bin/; done
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin RUST_VERSION=$full
CF
    bh bud --quiet --pull=never --network host -t "$BUILDER_IMAGE" ctx >/dev/null
  )
  rm -rf "$w"
  bh rmi localhost/seatwarden-bookworm-minbase:latest >/dev/null 2>&1 || true
  echo "builder base $BUILDER_IMAGE built in $(( $(date +%s) - t0 )) s"
}

export_image() {   # TAG OUT
  rm -f "$2"
  bh push --quiet "$1" "docker-archive:$2:$1" >/dev/null
}

case "${1:-}" in
  bases)
    runtime_base
    [ "${BUILDER:-0}" = 1 ] && builder_base
    true ;;
  prebuilt)
    BIN=${2:?binary}; TAG=${3:?tag}; OUT=${4:?out.tar}
    runtime_base
    ctx=$(mktemp -d /tmp/seatwarden-prebuilt.XXXXXX)
    # No debug info in the image (the debug build carries hundreds of MB of it); same code.
    objcopy --strip-debug "$BIN" "$ctx/seatwarden"
    # The Dockerfile's runtime stage, word for word, with the binary from the context instead of from
    # the build stage.
    awk '$1=="FROM"{last=NR} {l[NR]=$0} END{for(i=last;i<=NR;i++) print l[i]}' Dockerfile \
      | sed 's|^COPY --from=[^ ]* /seatwarden /seatwarden|COPY seatwarden /seatwarden|' > "$ctx/Containerfile"
    grep -q '^COPY seatwarden /seatwarden$' "$ctx/Containerfile" \
      || { echo "the Dockerfile's runtime stage no longer copies /seatwarden from the build stage:"; cat "$ctx/Containerfile"; exit 1; }
    bh bud --quiet --pull=never ${LABEL:+--label "$LABEL"} -t "$TAG" "$ctx" >/dev/null
    rm -rf "$ctx"
    export_image "$TAG" "$OUT"
    echo "prebuilt image $TAG -> $OUT" ;;
  dockerfile)
    TAG=${2:?tag}; OUT=${3:?out.tar}
    runtime_base; builder_base
    t0=$(date +%s)
    # nice: a second release build competes with the tests for the cores.
    nice -n 10 "${BUILDAH[@]}" bud --pull=never --network host --layers ${LABEL:+--label "$LABEL"} -f Dockerfile -t "$TAG" . \
      >"$BH/dockerfile-build.log" 2>&1 || { tail -40 "$BH/dockerfile-build.log"; exit 1; }
    echo "Dockerfile build of $TAG: $(( $(date +%s) - t0 )) s ($(grep -o 'Finished .*' "$BH/dockerfile-build.log" | tail -1))"
    export_image "$TAG" "$OUT"
    echo "Dockerfile image $TAG -> $OUT" ;;
  *) echo "usage: $0 bases | prebuilt BIN TAG OUT | dockerfile TAG OUT"; exit 2 ;;
esac
