# syntax=docker/dockerfile:1
# The seatwarden operator image: the release binary on distroless cc (glibc, CA certificates, a
# nonroot user; no shell, no package manager).

# Build on Debian 12 (bookworm) because the runtime is distroless cc-debian12: the binary must not
# need a newer glibc than the one it runs on (2.36). The Rust release the tests here run on.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
# The whole crate (see .dockerignore); target/ and .git stay out.
COPY . .
# Cache the registry and the target dir between builds; copy the binary out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin seatwarden \
 && install -m 0755 target/release/seatwarden /seatwarden

# distroless cc has exactly the libraries the binary links (libc, libm, libgcc_s, ld-linux) and
# /etc/ssl/certs for TLS to Atlassian and SMTP. Time zones are bundled into the binary (jiff's
# tzdb-bundle-always), so no tzdata is needed for schedule windows.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /seatwarden /seatwarden
# 65532 is distroless's nonroot user; numeric, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/seatwarden", "run"]
