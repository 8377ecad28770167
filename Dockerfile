# syntax=docker/dockerfile:1
# Images of the three binaries, one target each:
#   docker build --target identity-service -t identity-service .
#   docker build --target scim-adapter     -t scim-adapter .
#   docker build --target identityctl      -t identityctl .
# The builder compiles all three once (protox compiles the protos: no protoc); each
# runtime image is distroless (glibc and CA certificates, no shell, no package
# manager) and runs as the unprivileged user 65532. Nothing links a C library of its
# own: no libpq, no OpenSSL.
# checkov:skip=CKV_DOCKER_2: distroless images have no shell or client to run a HEALTHCHECK; Kubernetes probes grpc.health.v1 and /healthz, /readyz (k8s/base)

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# The caches keep crates and build output between builds; the binaries are copied
# out of the cached target directory, since a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin identity-service --bin scim-adapter --bin identityctl \
    && mkdir -p /out \
    && cp target/release/identity-service target/release/scim-adapter target/release/identityctl /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS identity-service
COPY --from=builder /out/identity-service /usr/local/bin/identity-service
USER 65532:65532
# gRPC (IDENTITY_GRPC_ADDR) and the admin HTTP port with /metrics (IDENTITY_ADMIN_ADDR).
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/identity-service"]

FROM gcr.io/distroless/cc-debian12:nonroot AS scim-adapter
COPY --from=builder /out/scim-adapter /usr/local/bin/scim-adapter
USER 65532:65532
# SCIM over HTTP, /healthz, /readyz and /metrics (SCIM_LISTEN_ADDR).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/scim-adapter"]

FROM gcr.io/distroless/cc-debian12:nonroot AS identityctl
COPY --from=builder /out/identityctl /usr/local/bin/identityctl
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/identityctl"]
