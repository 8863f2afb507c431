# syntax=docker/dockerfile:1
#
# The container image runs `regulars serve` against the database in REGULARS_DATABASE_URL. The
# embedded default (a private PostgreSQL started by the binary) is for a machine or VM, not a
# container: this image carries no PostgreSQL binaries, so without REGULARS_DATABASE_URL the
# server stops at start with one line saying so.
#
#   docker build -t regulars .
#   docker run -p 8080:8080 -e REGULARS_DATABASE_URL=postgres://... -v regulars-data:/data regulars

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# A static binary: the final image has no libc. Time zones are embedded (time/tzdata).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/regulars ./cmd/regulars \
    && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/regulars /regulars
# The data dir keeps the generated secret (when REGULARS_SECRET is not given) and the mail
# outbox (when REGULARS_SMTP_URL is not given); mount a volume there to keep them.
COPY --from=build --chown=65532:65532 /out/data /data
ENV REGULARS_HTTP_ADDR=:8080 \
    REGULARS_DATA_DIR=/data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
# No shell or curl in the image: the binary checks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/regulars", "healthcheck"]
ENTRYPOINT ["/regulars"]
CMD ["serve"]
