# The order saga's binaries in one image: `worker`, `starter` (the CLI and `starter serve`, the
# HTTP API) and `data-platform` (the local receiver). docker-compose.yml runs each as a service.
#
#   docker build -t order-saga .
#   docker build -t order-saga --build-arg CARGO_FEATURES=worker/otel .   # with OTLP export

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# The Temporal SDK compiles its protos at build time, with the well-known types.
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ARG CARGO_FEATURES=""
COPY . .
# A build on 2 cores takes a while; --locked builds exactly what the tests ran with.
RUN cargo build --release --locked -p worker -p starter -p receiver \
        ${CARGO_FEATURES:+--features "$CARGO_FEATURES"} \
    && mkdir /out \
    && cp target/release/worker target/release/starter target/release/data-platform /out/

FROM debian:bookworm-slim
# ca-certificates: TLS to Temporal Cloud or a secured cluster; curl: the health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home saga
COPY --from=build /out/ /usr/local/bin/
USER saga
# Inside a container the services listen on every interface; docker-compose.yml decides what
# the host sees. Every other setting keeps CONTRACT §3's default unless the environment says,
# except AUTH_SECRET, which has none here: on 0.0.0.0 `starter serve` refuses the development
# secret, so run the API with AUTH_SECRET set to at least 32 bytes (`openssl rand -hex 32`).
ENV HTTP_ADDR=0.0.0.0:8080 \
    API_METRICS_ADDR=0.0.0.0:9465 \
    WORKER_METRICS_ADDR=0.0.0.0:9464 \
    DATA_PLATFORM_ADDR=0.0.0.0:8090 \
    LOG_FORMAT=json
EXPOSE 8080 9464 9465 8090
CMD ["worker"]
