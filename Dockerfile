# A small static, non-root image of an opkit operator binary (default: the WebApp example).
#
#   docker build -t webapp-operator:0.1.0 .
#   docker build --build-arg OPERATOR=platform -t ecommerceplatform-operator:0.1.0 .
#
# Stage 1 builds on Alpine, whose Rust targets musl and links statically; stage 2 is an empty
# image holding only the binary. The operator talks to the API server with the cluster CA from its
# service account, so the image needs no CA bundle or shell.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
ARG OPERATOR=webapp
# ring (TLS) compiles C code.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# Cache the registry and the target directory across builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --example "${OPERATOR}" \
    && cp "target/release/examples/${OPERATOR}" /operator

FROM scratch
COPY --from=build /operator /operator
# Any non-root UID works; the Deployment's securityContext asks for 65532 as well.
USER 65532:65532
ENTRYPOINT ["/operator"]
# The example binaries default to an embedded API server: --cluster uses the in-cluster config.
# A Deployment's `args` replace this line, so they repeat --cluster.
CMD ["--cluster", "run"]
