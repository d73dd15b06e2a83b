# Build a static binary (pure-Go SQLite driver: no cgo), then ship it alone in a non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/latch ./cmd/latch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/latch /usr/local/bin/latch
COPY config.yaml /etc/latch/config.yaml
# The embedded SQLite default writes latch.db in the working directory, which nonroot owns.
WORKDIR /home/nonroot
USER nonroot:nonroot
EXPOSE 10952
ENTRYPOINT ["/usr/local/bin/latch", "--config", "/etc/latch/config.yaml"]
CMD ["serve"]
