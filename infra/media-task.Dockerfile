# The media task's image. Built from the repository root:
#   docker buildx build --platform linux/amd64 -f infra/media-task.Dockerfile -t parley-media .
# (linux/arm64 for an arm64 stack). infra/deploy builds and pushes it for you.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Only the media task; the lock file pins every crate, as in CI.
RUN cargo build --release --locked -p parley-media --bin media-task \
    && cp target/release/media-task /media-task

FROM debian:bookworm-slim
# flite is the offline voice (run as a program); PocketSphinx, opened at run time, is
# the offline recogniser; the CA bundle is for the vendors' and AWS's TLS.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates flite libpocketsphinx3 pocketsphinx-en-us \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home parley
COPY --from=build /media-task /usr/local/bin/media-task
USER parley
ENV PARLEY_LISTEN=0.0.0.0:8080
EXPOSE 8080
# The load balancer checks /health; this lets `docker run` and ECS see it too.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD ["/usr/local/bin/media-task", "--health"]
ENTRYPOINT ["/usr/local/bin/media-task"]
