# syntax=docker/dockerfile:1
# Builds the manager image:  docker build -t <image> .   (or: make docker-build IMG=<image>)
# Multi-platform:            docker buildx build --platform linux/amd64,linux/arm64 -t <image> .

# ---- build -------------------------------------------------------------------------------
FROM golang:1.26 AS builder
# Set by BuildKit from --platform; empty with the legacy builder (then the builder's own arch).
ARG TARGETOS
ARG TARGETARCH
# Use the image's Go; never download another toolchain during the build.
ENV GOTOOLCHAIN=local

WORKDIR /workspace

# Dependencies first, in their own layer, so source edits do not re-download modules.
COPY go.mod go.sum ./
RUN go mod download

# Only the packages the manager is built from.
COPY cmd/ cmd/
COPY api/ api/
COPY internal/ internal/

RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags='-s -w' -o manager ./cmd

# ---- run ---------------------------------------------------------------------------------
# Static binary on distroless: no shell, no package manager, non-root user 65532.
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532

ENTRYPOINT ["/manager"]
