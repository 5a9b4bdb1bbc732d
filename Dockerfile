# syntax=docker/dockerfile:1
# imds-proxy as a static, non-root image:
#   make docker                       # or: docker build --build-arg VERSION=$(git describe --always --dirty) -t imds-proxy .
#   docker run --rm -p 80:8080 imds-proxy --listen 0.0.0.0:8080 --source 172.16.0.0/12

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a code change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/imds-proxy ./cmd/imds-proxy

# distroless/static: CA certificates and /etc/passwd, no shell; uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/imds-proxy /imds-proxy
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/imds-proxy"]
# Listen on every address of the container: without -p or a DNAT rule
# nothing reaches it. Arguments given to `docker run` replace this whole line,
# so repeat --listen 0.0.0.0:8080 when adding flags.
CMD ["--listen", "0.0.0.0:8080"]
