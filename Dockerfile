# Guild's container image: `serve` by default; `worker`, `migrate` and the others by command.
# Multi-stage: cargo-chef builds the dependencies in a layer of their own, so a change to
# Guild's code rebuilds only Guild.

FROM lukemathwalker/cargo-chef:latest-rust-1-slim-bookworm AS chef
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# Guild checks its SQL at run time (and in its tests), not at compile time: the build needs
# no database.
ENV SQLX_OFFLINE=true
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin guild
COPY . .
RUN cargo build --release --locked --bin guild

FROM debian:bookworm-slim AS runtime
# CA certificates for HTTPS to the model providers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin guild
COPY --from=builder /app/target/release/guild /usr/local/bin/guild
USER guild
WORKDIR /tmp
# In a container, listen on every interface and log JSON. PostgreSQL comes from
# DATABASE_URL: the image has no server binaries for a private one.
ENV GUILD_BIND=0.0.0.0:8080 \
    GUILD_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["guild", "healthcheck"]
ENTRYPOINT ["guild"]
CMD ["serve"]
