# syntax=docker/dockerfile:1
# kthena-rs image: kthena-router (entrypoint) and kthena-mock (a vLLM/SGLang-speaking mock
# engine for demos and tests), built from the workspace with the locked dependencies.
#
#   docker build -t ghcr.io/kthena-rs/kthena-router:0.1.0 .
#
# Runtime: distroless cc (glibc, libgcc, CA certificates; no shell), user 65532.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kthena-router -p kthena-mock --bins \
    && mkdir -p /out \
    && cp target/release/kthena-router target/release/kthena-mock /out/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/kthena-router /out/kthena-mock /usr/local/bin/
USER 65532:65532
EXPOSE 8080 9090 8443
ENTRYPOINT ["/usr/local/bin/kthena-router"]
