# syntax=docker/dockerfile:1
# The mpegflow image: one static binary for every server-side role
# (`serve`, `operator`, `migrate`; migrations are embedded), on distroless
# static as the non-root user 65532. No shell, no package manager.
# Build from the repository root: docker build -t mpegflow .
# (the encode pod's image, with FFmpeg, is encoder-image/Dockerfile).

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/mpegflow ./cmd/mpegflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mpegflow /usr/local/bin/mpegflow
USER 65532:65532
EXPOSE 8080 50051 9090
ENTRYPOINT ["/usr/local/bin/mpegflow"]
CMD ["serve"]
