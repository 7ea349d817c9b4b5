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

# Node 20 for verifying generated TypeScript projects (Debian's is 18; Vite needs 20.19+).
FROM node:20-bookworm-slim AS node

FROM debian:bookworm-slim AS runtime
# CA certificates for HTTPS to the model providers and the package registries; what
# verification runs generated projects with: bubblewrap (the sandbox), util-linux's prlimit
# and setpriv, Python 3.11 with venv, and PostgreSQL's server binaries (a throwaway cluster
# per verified server; no cluster is created at install).
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates bubblewrap util-linux \
       python3 python3-venv postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin guild \
    && mkdir -p /var/lib/guild/sandbox && chown guild /var/lib/guild/sandbox
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
COPY --from=builder /app/target/release/guild /usr/local/bin/guild
USER guild
WORKDIR /tmp
# Verification's scratch directories and package cache. The sandbox needs unprivileged
# user namespaces: run workers with `--security-opt seccomp=unconfined --security-opt
# apparmor=unconfined` (docker-compose.yml does); no capability and no root are needed.
ENV GUILD_SANDBOX_DIR=/var/lib/guild/sandbox
# In a container, listen on every interface and log JSON. PostgreSQL comes from
# DATABASE_URL: the image has no server binaries for a private one.
ENV GUILD_BIND=0.0.0.0:8080 \
    GUILD_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["guild", "healthcheck"]
ENTRYPOINT ["guild"]
CMD ["serve"]
