# syntax=docker/dockerfile:1
# tastytrade-gateway: multi-stage build; runs as a numeric non-root user on a slim base.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY openapi ./openapi
# The workspace names the load generator and the criterion benches: their sources must be
# there for the manifest to load, though only the gateway is built.
COPY bench/loadgen ./bench/loadgen
COPY bench/criterion ./bench/criterion
# Cache mounts keep the crate registry and the compiled dependencies between builds, so a
# source change recompiles the gateway only, not its ~300 dependencies. Built with OTLP
# trace export (it stays off until OTEL_EXPORTER_OTLP_ENDPOINT is set).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features otlp \
 && cp target/release/tastytrade-gateway /usr/local/bin/tastytrade-gateway \
 && strip /usr/local/bin/tastytrade-gateway

FROM debian:bookworm-slim
# ca-certificates: the OS trust store rustls uses for tastytrade. Not version-pinned
# (DL3008): pinned Debian versions vanish from the archive with each security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home gateway
COPY --from=build /usr/local/bin/tastytrade-gateway /usr/local/bin/tastytrade-gateway
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENV TTGW_LISTEN=0.0.0.0:8080 \
    TTGW_LOG_FORMAT=json
EXPOSE 8080
# The binary asks itself (/livez): no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["tastytrade-gateway", "healthcheck"]
ENTRYPOINT ["tastytrade-gateway"]
CMD ["serve"]
