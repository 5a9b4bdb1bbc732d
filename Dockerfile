# imds-proxy as an image holding nothing but the static binary and a CA
# bundle, built with no registry: `make docker` builds the binary on the host
# (CGO_ENABLED=0) and copies it, with the host's CA bundle, into bin/image/,
# the build context of this file. To build from source in Docker instead,
# from the golang and distroless bases, see Dockerfile.multistage.
#
#   make docker                                   # imds-proxy:$(git describe)
#   docker run --rm -p 80:8080 imds-proxy:TAG --listen 0.0.0.0:8080 --source 172.16.0.0/12
FROM scratch

ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="imds-proxy" \
      org.opencontainers.image.description="EC2 instance metadata (IMDS) proxy: one tenant per source address" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/imds-proxy/imds-proxy" \
      org.opencontainers.image.licenses="BSD-3-Clause"

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY imds-proxy /imds-proxy
# Where the AWS SDK looks for ~/.aws: mount the profiles there.
ENV HOME=/home/nonroot
# Never root; the same uid as distroless's nonroot.
USER 65532:65532
EXPOSE 8080 9180
# The binary checks itself: GET /healthz on the admin listener,
# 127.0.0.1:9180 unless IMDS_PROXY_ADMIN names another address.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/imds-proxy", "health"]
ENTRYPOINT ["/imds-proxy"]
# Listen on every address of the container: without -p or a DNAT rule
# nothing reaches it. Arguments given to `docker run` replace this whole line,
# so repeat --listen 0.0.0.0:8080 when adding flags; --admin-listen
# 0.0.0.0:9180 makes /healthz and /metrics reachable from outside.
CMD ["--listen", "0.0.0.0:8080"]
