#!/usr/bin/env bash
# Package kubectl-secmon release archives and write the filled krew manifest.
#
# Usage:
#   scripts/package.sh VERSION [--target TRIPLE=BINARY]... [--dist DIR]...
#                      [--out DIR] [--manifest FILE] [--license FILE] [--allow-missing]
#
#   VERSION               release version with a leading v, e.g. v0.1.0 (semver)
#   --target TRIPLE=BIN   archive the built binary BIN for the Rust target TRIPLE into
#                         OUT/kubectl-secmon-VERSION-TRIPLE.tar.gz (kubectl-secmon and
#                         LICENSE at the archive root); repeatable
#   --dist DIR            use already-made archives DIR/kubectl-secmon-VERSION-TRIPLE.tar.gz
#                         (copied into OUT unless DIR is OUT); repeatable
#   --out DIR             output directory (default: <repo>/dist)
#   --manifest FILE       krew manifest template (default: <repo>/krew-manifest.yaml)
#   --license FILE        license file to ship (default: <repo>/LICENSE)
#   --allow-missing       do not fail when a platform of the manifest has no archive; such
#                         platforms are left out of OUT/secmon.yaml (for local testing only)
#
# Writes OUT/secmon.yaml: the template with spec.version, every platform's uri (version)
# and sha256 (lowercase hex of the archive in OUT) filled in. The targets are the ones
# named in the template's URIs:
#   x86_64-unknown-linux-musl   (linux/amd64)    aarch64-unknown-linux-musl (linux/arm64)
#   x86_64-apple-darwin         (darwin/amd64)   aarch64-apple-darwin       (darwin/arm64)
#
# Examples:
#   # Only the host target is built (local test of the krew manifest):
#   cargo build --release --bin kubectl-secmon
#   scripts/package.sh v0.1.0 --allow-missing \
#       --target x86_64-unknown-linux-musl=target/release/kubectl-secmon
#   kubectl krew install --manifest=dist/secmon.yaml \
#       --archive=dist/kubectl-secmon-v0.1.0-x86_64-unknown-linux-musl.tar.gz
#
#   # Release: all four targets built (see below), or archives made on several CI runners
#   # and collected into dist/:
#   scripts/package.sh v0.1.0 \
#       --target x86_64-unknown-linux-musl=target/x86_64-unknown-linux-musl/release/kubectl-secmon \
#       --target aarch64-unknown-linux-musl=target/aarch64-unknown-linux-musl/release/kubectl-secmon \
#       --target x86_64-apple-darwin=target/x86_64-apple-darwin/release/kubectl-secmon \
#       --target aarch64-apple-darwin=target/aarch64-apple-darwin/release/kubectl-secmon
#   scripts/package.sh v0.1.0 --dist dist
#
# Cross-building the release targets (the tools are not needed to run this script):
#   Linux musl with cross (needs Docker or Podman; builds in a container with the
#   target's C toolchain, which aws-lc-sys needs):
#       cargo install cross --locked
#       cross build --release --bin kubectl-secmon --target x86_64-unknown-linux-musl
#       cross build --release --bin kubectl-secmon --target aarch64-unknown-linux-musl
#   Linux musl with cargo-zigbuild (needs zig; uses zig as the C compiler and linker):
#       cargo install cargo-zigbuild --locked
#       rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
#       cargo zigbuild --release --bin kubectl-secmon --target aarch64-unknown-linux-musl
#   macOS: build on a macOS runner (cross has no darwin images):
#       rustup target add x86_64-apple-darwin aarch64-apple-darwin
#       cargo build --release --bin kubectl-secmon --target aarch64-apple-darwin
#       cargo build --release --bin kubectl-secmon --target x86_64-apple-darwin
#     or from Linux with cargo-zigbuild and a macOS SDK (SDKROOT=/path/to/MacOSX.sdk).
#
# Archives are reproducible: fixed owner, modes and mtime (SOURCE_DATE_EPOCH, else the
# last commit's time). Requires bash, python3 and sha256sum (or shasum on macOS).
set -euo pipefail

PLUGIN=secmon
BIN_NAME=kubectl-secmon
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
    echo "package.sh: error: $*" >&2
    exit 1
}
warn() {
    echo "package.sh: warning: $*" >&2
}
usage() {
    sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

command -v python3 >/dev/null 2>&1 || die "python3 is required"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print tolower($1)}'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{print tolower($1)}'
    else
        die "sha256sum (or shasum) is required"
    fi
}

# The Python helpers: tar.gz creation/inspection and manifest filling.
py() {
    python3 - "$@" <<'PY'
import gzip, io, os, re, sys, tarfile

cmd = sys.argv[1]

def fail(msg):
    print("package.sh: error: " + msg, file=sys.stderr)
    sys.exit(1)

URI_RE = re.compile(
    r'^(?P<pre>\s*uri:\s*["\']?)(?P<base>\S*?/releases/download/)(?P<ver>[^/"\']+)'
    r'/(?P<bin>kubectl-secmon)-(?P=ver)-(?P<target>[A-Za-z0-9_.-]+)\.tar\.gz'
    r'(?P<post>["\']?\s*)$')

def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines(keepends=True)
    except OSError as e:
        fail("cannot read %s: %s" % (path, e.strerror))

def platform_blocks(lines):
    """(start, end) line ranges of the items of spec.platforms."""
    start = next((i for i, l in enumerate(lines) if re.match(r'^\s+platforms:\s*$', l)), None)
    if start is None:
        fail("the manifest has no spec.platforms")
    pl_indent = len(lines[start]) - len(lines[start].lstrip())
    blocks, cur, item_indent = [], None, None
    end = len(lines)
    for i in range(start + 1, len(lines)):
        l = lines[i]
        if not l.strip() or l.lstrip().startswith('#'):
            continue
        ind = len(l) - len(l.lstrip())
        if ind <= pl_indent and not l.lstrip().startswith('- '):
            end = i
            break
        if l.lstrip().startswith('- ') and (item_indent is None or ind == item_indent):
            item_indent = ind
            if cur is not None:
                blocks.append((cur, i))
            cur = i
        elif item_indent is not None and ind < item_indent:
            end = i
            break
    if cur is not None:
        blocks.append((cur, end))
    return blocks

def block_target(lines, block):
    for i in range(*block):
        m = URI_RE.match(lines[i].rstrip('\n'))
        if m:
            return i, m
    return None, None

if cmd == "targets":
    # targets MANIFEST -> "TARGET OS/ARCH" per platform
    lines = read_lines(sys.argv[2])
    for b in platform_blocks(lines):
        _, m = block_target(lines, b)
        if m is None:
            fail("a platform in %s has no uri of the form .../releases/download/VERSION/"
                 "kubectl-secmon-VERSION-TARGET.tar.gz" % sys.argv[2])
        text = "".join(lines[b[0]:b[1]])
        os_ = re.search(r'^\s*os:\s*(\S+)', text, re.M)
        arch = re.search(r'^\s*arch:\s*(\S+)', text, re.M)
        print(m.group("target"), "%s/%s" % (os_.group(1) if os_ else "?", arch.group(1) if arch else "?"))

elif cmd == "archive":
    # archive OUT BIN LICENSE BIN_NAME MTIME
    out, binary, license_, bin_name, mtime = sys.argv[2:7]
    mtime = int(mtime)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for src, name, mode in ((binary, bin_name, 0o755), (license_, "LICENSE", 0o644)):
            with open(src, "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    tmp = out + ".tmp"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=mtime) as gz:
            gz.write(buf.getvalue())
    os.replace(tmp, out)

elif cmd == "check-archive":
    # check-archive ARCHIVE BIN_NAME: the binary and LICENSE must be at the root
    path, bin_name = sys.argv[2:4]
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            names = {m.name[2:] if m.name.startswith("./") else m.name: m for m in tar.getmembers()}
    except (OSError, tarfile.TarError) as e:
        fail("%s is not a readable .tar.gz: %s" % (path, e))
    for want in (bin_name, "LICENSE"):
        if want not in names or not names[want].isfile():
            fail("%s does not contain %s at the archive root" % (path, want))
    if not names[bin_name].mode & 0o111:
        fail("%s: %s in the archive is not executable" % (path, bin_name))

elif cmd == "binary-kind":
    # binary-kind BIN TARGET -> a warning if BIN does not look like a binary for TARGET
    path, target = sys.argv[2:4]
    with open(path, "rb") as f:
        head = f.read(20)
    arch = target.split("-", 1)[0]
    kind = None
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        endian = "little" if head[5] == 1 else "big"
        machine = int.from_bytes(head[18:20], endian)
        kind = ("linux", {62: "x86_64", 183: "aarch64"}.get(machine, "machine %d" % machine))
    elif head[:4] in (b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf") and len(head) >= 8:
        endian = "little" if head[:4] == b"\xcf\xfa\xed\xfe" else "big"
        cpu = int.from_bytes(head[4:8], endian)
        kind = ("darwin", {0x01000007: "x86_64", 0x0100000C: "aarch64"}.get(cpu, "cpu %#x" % cpu))
    want_os = "darwin" if "-apple-darwin" in target else "linux" if "-linux-" in target else None
    if kind is None:
        print("%s is neither an ELF nor a Mach-O 64-bit executable" % path)
    elif (want_os and kind[0] != want_os) or kind[1] != arch:
        print("%s is a %s %s binary, not one for %s" % (path, kind[0], kind[1], target))

elif cmd == "fill":
    # fill TEMPLATE OUTFILE VERSION [TARGET=SHA256]... ; platforms without a hash are dropped
    template, outfile, version = sys.argv[2:5]
    hashes = dict(a.split("=", 1) for a in sys.argv[5:])
    lines = read_lines(template)
    blocks = platform_blocks(lines)
    drop = set()
    kept = 0
    for b in blocks:
        i, m = block_target(lines, b)
        target = m.group("target")
        if target not in hashes:
            drop.update(range(*b))
            continue
        kept += 1
        lines[i] = "%s%s%s/%s-%s-%s.tar.gz%s\n" % (
            m.group("pre"), m.group("base"), version, m.group("bin"), version, target,
            m.group("post").rstrip("\n").rstrip())
        sha_lines = [j for j in range(*b) if re.match(r'^\s*sha256:', lines[j])]
        if len(sha_lines) != 1:
            fail("the platform for %s must have exactly one sha256 line" % target)
        j = sha_lines[0]
        ind = lines[j][:len(lines[j]) - len(lines[j].lstrip())]
        lines[j] = '%ssha256: "%s"\n' % (ind, hashes[target].lower())
    if kept == 0:
        fail("no platform of the manifest has an archive")
    vers = [k for k, l in enumerate(lines) if re.match(r'^\s+version:', l)]
    if len(vers) != 1:
        fail("the manifest must have exactly one spec.version line")
    k = vers[0]
    lines[k] = '%sversion: %s\n' % (lines[k][:len(lines[k]) - len(lines[k].lstrip())], version)
    # The template's leading comments are about the template; say where this came from.
    first = next((n for n, l in enumerate(lines) if l.strip() and not l.lstrip().startswith('#')), 0)
    drop.update(range(first))
    header = "# Generated by scripts/package.sh from %s; do not edit.\n" % os.path.basename(template)
    text = header + "".join(l for n, l in enumerate(lines) if n not in drop)
    tmp = outfile + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, outfile)

else:
    fail("internal: unknown helper " + cmd)
PY
}

# ---- arguments ---------------------------------------------------------------------
VERSION=""
OUT="$REPO_ROOT/dist"
MANIFEST="$REPO_ROOT/krew-manifest.yaml"
LICENSE_FILE="$REPO_ROOT/LICENSE"
ALLOW_MISSING=0
TARGET_SPECS=()
DIST_DIRS=()

need_value() {
    [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --target) need_value "$@"; TARGET_SPECS+=("$2"); shift 2 ;;
        --target=*) TARGET_SPECS+=("${1#--target=}"); shift ;;
        --dist) need_value "$@"; DIST_DIRS+=("$2"); shift 2 ;;
        --dist=*) DIST_DIRS+=("${1#--dist=}"); shift ;;
        --out) need_value "$@"; OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#--out=}"; shift ;;
        --manifest) need_value "$@"; MANIFEST="$2"; shift 2 ;;
        --manifest=*) MANIFEST="${1#--manifest=}"; shift ;;
        --license) need_value "$@"; LICENSE_FILE="$2"; shift 2 ;;
        --license=*) LICENSE_FILE="${1#--license=}"; shift ;;
        --allow-missing) ALLOW_MISSING=1; shift ;;
        -*) die "unknown option $1 (see --help)" ;;
        *)
            [[ -z "$VERSION" ]] || die "unexpected argument $1 (the version is already $VERSION)"
            VERSION="$1"; shift ;;
    esac
done

[[ -n "$VERSION" ]] || die "missing VERSION, e.g. scripts/package.sh v0.1.0 --target TRIPLE=BINARY (see --help)"
semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'
[[ "$VERSION" =~ $semver ]] || die "version '$VERSION' is not a semantic version with a leading v (e.g. v0.1.0)"
[[ -f "$MANIFEST" ]] || die "manifest template $MANIFEST not found"
[[ -f "$LICENSE_FILE" ]] || die "license file $LICENSE_FILE not found"
[[ ${#TARGET_SPECS[@]} -gt 0 || ${#DIST_DIRS[@]} -gt 0 ]] ||
    die "nothing to package: give --target TRIPLE=BINARY and/or --dist DIR (see --help)"

abspath() { python3 -c 'import os, sys; print(os.path.realpath(sys.argv[1]))' "$1"; }
OUT="$(abspath "$OUT")"

if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
    MTIME="$SOURCE_DATE_EPOCH"
else
    MTIME="$(git -C "$REPO_ROOT" log -1 --format=%ct 2>/dev/null || true)"
fi
[[ "$MTIME" =~ ^[0-9]+$ ]] || MTIME=0

# "TARGET OS/ARCH" per platform of the template.
PLATFORMS="$(py targets "$MANIFEST")"
MANIFEST_TARGETS=" $(echo "$PLATFORMS" | awk '{print $1}' | tr '\n' ' ')"
archive_name() { echo "$BIN_NAME-$VERSION-$1.tar.gz"; }

# ---- collect and check the inputs before writing anything -------------------------
BUILD_TARGETS=()   # parallel arrays: target, binary
BUILD_BINARIES=()
COPY_SOURCES=()    # already-made archives outside OUT
DONE=" "           # targets that will have an archive in $OUT, space-separated

for spec in ${TARGET_SPECS[@]+"${TARGET_SPECS[@]}"}; do
    [[ "$spec" == *=* ]] || die "--target $spec: expected TRIPLE=BINARY"
    target="${spec%%=*}"
    binary="${spec#*=}"
    [[ "$MANIFEST_TARGETS" == *" $target "* ]] ||
        die "--target $target: no platform of $MANIFEST uses it (targets:${MANIFEST_TARGETS% })"
    [[ "$DONE" != *" $target "* ]] || die "--target $target given twice"
    [[ -f "$binary" ]] || die "--target $target: binary $binary not found (build it first, see --help)"
    [[ -x "$binary" ]] || die "--target $target: $binary is not executable"
    BUILD_TARGETS+=("$target")
    BUILD_BINARIES+=("$binary")
    DONE+="$target "
done

for dir in ${DIST_DIRS[@]+"${DIST_DIRS[@]}"}; do
    [[ -d "$dir" ]] || die "--dist $dir: not a directory"
    dir="$(abspath "$dir")"
    for target in $MANIFEST_TARGETS; do
        src="$dir/$(archive_name "$target")"
        [[ -f "$src" ]] || continue
        if [[ "$DONE" == *" $target "* ]]; then
            [[ "$dir" == "$OUT" ]] && continue # rebuilt from --target below
            die "two archives for $target: --target or another --dist, and $src"
        fi
        py check-archive "$src" "$BIN_NAME"
        if [[ "$dir" == "$OUT" ]]; then
            echo "found $src"
        else
            COPY_SOURCES+=("$src")
        fi
        DONE+="$target "
    done
done

missing=""
while read -r target osarch; do
    [[ "$DONE" == *" $target "* ]] || missing+="${missing:+, }$target ($osarch)"
done <<<"$PLATFORMS"
if [[ -n "$missing" ]]; then
    [[ $ALLOW_MISSING -eq 1 ]] ||
        die "no archive for $missing; pass --target TRIPLE=BINARY or --dist DIR for it, or --allow-missing"
    warn "no archive for $missing: left out of $OUT/$PLUGIN.yaml (not for krew-index)"
fi
[[ "$DONE" != " " ]] || die "no archive for any platform of $MANIFEST"

# ---- archives ----------------------------------------------------------------------
mkdir -p "$OUT"
for src in ${COPY_SOURCES[@]+"${COPY_SOURCES[@]}"}; do
    cp "$src" "$OUT/"
    echo "copied $src"
done

for i in ${BUILD_TARGETS[@]+"${!BUILD_TARGETS[@]}"}; do
    target="${BUILD_TARGETS[$i]}"
    binary="${BUILD_BINARIES[$i]}"
    mismatch="$(py binary-kind "$binary" "$target")"
    [[ -z "$mismatch" ]] || warn "$mismatch"
    archive="$OUT/$(archive_name "$target")"
    # The same binary for several targets (a test run) gives identical archives.
    same=""
    for ((j = 0; j < i; j++)); do
        if [[ "${BUILD_BINARIES[$j]}" -ef "$binary" ]]; then
            same="$OUT/$(archive_name "${BUILD_TARGETS[$j]}")"
            break
        fi
    done
    if [[ -n "$same" ]]; then
        cp "$same" "$archive"
    else
        py archive "$archive" "$binary" "$LICENSE_FILE" "$BIN_NAME" "$MTIME"
    fi
    echo "created $archive"
done

# ---- manifest ----------------------------------------------------------------------
hashes=()
for target in $DONE; do
    hashes+=("$target=$(sha256_of "$OUT/$(archive_name "$target")")")
done
py fill "$MANIFEST" "$OUT/$PLUGIN.yaml" "$VERSION" "${hashes[@]}"
echo "wrote $OUT/$PLUGIN.yaml"
