# Build a static binary (pure-Go SQLite driver: no cgo), then ship it alone in a non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/latch ./cmd/latch
# The distroless image has no shell to make directories with; make the data directory here.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/latch /usr/local/bin/latch
COPY config.yaml /etc/latch/config.yaml
# The embedded SQLite default keeps its file on a volume, so a new container finds its users, keys
# and secrets again. Point LATCH_DATABASE_URL at Postgres in production.
COPY --from=build --chown=65532:65532 /out/data /var/lib/latch
ENV LATCH_DATABASE_URL=sqlite:///var/lib/latch/latch.db
VOLUME /var/lib/latch
USER 65532:65532
EXPOSE 10952
# `latch healthcheck` asks the running server's /healthz on server.addr: no shell or curl needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/latch", "--config", "/etc/latch/config.yaml", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/latch", "--config", "/etc/latch/config.yaml"]
CMD ["serve"]
