# syntax=docker/dockerfile:1
#
# The swarmer image: one binary that runs as master, worker or standalone
# (deploy/kubernetes runs it as master and workers).
#   docker build -t swarmer:0.1.0 .
# The Rust version matches the toolchain the project is developed and tested
# with; bump both together.

# --- build -----------------------------------------------------------------
# Debian bookworm, like the runtime image below, so the binary links against
# the same glibc it will find at run time. The rust image has the C compiler
# and make that the vendored LuaJIT and ring need.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and the target directory between
# builds (BuildKit), so a change to one crate does not rebuild every
# dependency. target/ lives in a cache mount, so the binary is copied out.
# --locked: build exactly the versions in Cargo.lock, or fail.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package swarmer --bin swarmer \
    && install -D -m 0755 target/release/swarmer /out/swarmer

# --- run -------------------------------------------------------------------
# distroless/cc: glibc, libgcc and CA certificates, no shell and no package
# manager, so there is little to patch and little for an intruder to use.
# The :nonroot variant's user is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/swarmer /usr/local/bin/swarmer
# Numeric, so that Kubernetes can verify runAsNonRoot; the manifests run as
# the same uid (crates/swarmer/tests/k8s_manifests.rs checks they agree).
USER 65532:65532
# 8089: web UI and API (master, standalone); 5557: where workers join the master.
EXPOSE 8089 5557
ENTRYPOINT ["/usr/local/bin/swarmer"]
