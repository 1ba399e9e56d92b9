# syntax=docker/dockerfile:1
#
# The node sensor image: `kubectl-secmon` built from this repository on a minimal runtime.
# `kubectl secmon install` runs it as `kubectl-secmon sensor …` (see README, "Install").
#
#   docker buildx build --platform linux/amd64 -t ghcr.io/kubectl-secmon/sensor:v0.1.0 --push .
#
# The `simulate` target is the same binary on Debian slim, for `simulate --in-cluster --image`:
# scenarios run programs under the names rules look for (copies of /bin/true and /bin/sh) and
# `find`, which the distroless sensor image does not have (there they are SKIPPED, with why).
#
#   docker buildx build --platform linux/amd64 --target simulate \
#     -t ghcr.io/kubectl-secmon/sensor:v0.1.0-simulate --push .
#
# The eBPF object (src/bpf/sensor.bpf.o) and the default rules are committed and embedded,
# so the build needs neither clang nor a nightly toolchain. The probes decode x86_64
# system calls only: build for linux/amd64.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds; the binary is
# copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin kubectl-secmon \
 && install -D -m 0755 target/release/kubectl-secmon /out/kubectl-secmon

# Attack simulation: a shell, coreutils and findutils beside the binary. Never the sensor.
FROM debian:bookworm-slim AS simulate
COPY --from=build /out/kubectl-secmon /usr/local/bin/kubectl-secmon
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kubectl-secmon"]
CMD ["simulate", "list"]

# The sensor (the default, last target): glibc and libgcc only (TLS is rustls, statically
# linked); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/kubectl-secmon /usr/local/bin/kubectl-secmon
COPY LICENSE /usr/share/doc/kubectl-secmon/LICENSE
# Non-root by default, so the image runs unprivileged anywhere else (`kubectl-secmon rules
# validate`, `alerts --file`). The sensor needs root: the DaemonSet sets runAsUser: 0 with
# every capability dropped except BPF, PERFMON, SYS_RESOURCE, SYS_PTRACE and
# DAC_READ_SEARCH. Kubernetes grants added capabilities to a non-root process only in its
# bounding set (there are no ambient capabilities in a pod spec), and file capabilities
# would need allowPrivilegeEscalation: true, so a non-root sensor could not load its
# programs; root with five capabilities, no privilege escalation and a read-only root
# filesystem is the smaller grant.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kubectl-secmon"]
CMD ["sensor"]
