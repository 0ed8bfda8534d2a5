# tastytrade-gateway: multi-stage build; runs as a non-root user on a slim base.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY openapi ./openapi
# The workspace names the load generator and the criterion benches: their sources must be
# there for the manifest to load, though only the gateway is built.
COPY bench/loadgen ./bench/loadgen
COPY bench/criterion ./bench/criterion
RUN cargo build --release --locked && strip target/release/tastytrade-gateway

FROM debian:bookworm-slim
# ca-certificates: the OS trust store rustls uses for tastytrade; curl: the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /src/target/release/tastytrade-gateway /usr/local/bin/tastytrade-gateway
USER gateway
ENV TTGW_LISTEN=0.0.0.0:8080 \
    TTGW_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["tastytrade-gateway"]
CMD ["serve"]
