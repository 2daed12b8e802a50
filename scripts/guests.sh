#!/usr/bin/env bash
# make guests: build every guest crate (plugins/*, plugins/hostile/*, guest-sdk's example) for
# wasm32-wasip1 with Debian's Rust toolchain + build-std, then turn each core module into a
# component with `weft-componentize` (preview1 reactor adapter, world checked).
#
# Outputs:  target/plugins/NAME.wasm (+ NAME.plugin.json sidecar: name, version, description,
#           default grant), target/plugins/hostile/NAME.wasm, target/plugins/examples/hello.wasm
# Caches:   target/guests (the wasm build, std included), target/ (the host tool).
# Fresh Debian 12: installs rustc-web cargo-web rust-web-src lld wasi-libc if missing.
# No-op (well under 2 s) when nothing changed since the last successful run.
#
# Options: --force (ignore the up-to-date stamp), --test (also run guest-sdk's unit tests and
#          README doctest on the host), -q (quieter). Environment: GUEST_CARGO (default /usr/bin/cargo),
#          GUEST_RUSTC (default /usr/bin/rustc), HOST_CARGO (default: `cargo` on PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FORCE=0 DOCTEST=0 QUIET=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --test|--doctest) DOCTEST=1 ;;
    -q|--quiet) QUIET=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "guests: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

say() { echo "guests: $*" >&2; }
step() { [ "$QUIET" = 1 ] || say "$@"; }

GUEST_CARGO="${GUEST_CARGO:-/usr/bin/cargo}"
GUEST_RUSTC="${GUEST_RUSTC:-/usr/bin/rustc}"
WASI_SYSROOT=/usr/lib/wasm32-wasi
GUEST_TARGET_DIR="$ROOT/target/guests"
OUT="$ROOT/target/plugins"
STAMP="$GUEST_TARGET_DIR/.guests-stamp"
TOOL="${CARGO_TARGET_DIR:-$ROOT/target}/debug/weft-componentize"
WASM_OUT="$GUEST_TARGET_DIR/wasm32-wasip1/release"

# What the componentize tool is built from (a change elsewhere in weft-plugins does not force a
# rebuild of the tool here: that would wait on the host workspace's build lock for nothing).
TOOL_SOURCES=(host/plugins/src/componentize.rs host/plugins/src/inspect.rs
              host/plugins/src/bin/weft-componentize.rs host/plugins/Cargo.toml)

# ---- 0. fast path: nothing changed since the last successful run -------------------------
# Inputs: guest sources and manifests, the WIT, the componentize tool's sources, lockfiles,
# and this script. Outputs must all still exist.
inputs_changed() {
  [ -f "$STAMP" ] || return 0
  [ -x "$TOOL" ] || return 0
  local newer
  newer="$(find guest-sdk plugins "${TOOL_SOURCES[@]}" scripts/guests.sh Cargo.toml Cargo.lock \
      \( -name target -o -name node_modules \) -prune -o -type f -newer "$STAMP" -print -quit \
      2>/dev/null || true)"
  [ -n "$newer" ] && return 0
  local f
  while IFS= read -r f; do
    [ -n "$f" ] && [ ! -f "$f" ] && return 0
  done < "$STAMP"
  return 1
}
if [ "$FORCE" = 0 ] && [ "$DOCTEST" = 0 ] && ! inputs_changed; then
  step "up to date ($(grep -c '\.wasm$' "$STAMP") components in target/plugins)"
  exit 0
fi

# The stamp's mtime is the start of this run, so edits made while it builds are seen next time.
mkdir -p "$GUEST_TARGET_DIR"
: > "$STAMP.new"

# ---- 1. toolchain: Debian's rustc-web + rust-src, wasm-ld, wasi-libc ---------------------
missing_tools() {  # prints what is missing, one per line
  [ -x "$GUEST_CARGO" ] || echo "cargo ($GUEST_CARGO; Debian package cargo-web)"
  [ -x "$GUEST_RUSTC" ] || echo "rustc ($GUEST_RUSTC; Debian package rustc-web)"
  [ -d "$("$GUEST_RUSTC" --print sysroot 2>/dev/null || echo /usr)/lib/rustlib/src/rust/library/std" ] \
    || echo "the Rust standard library source (Debian package rust-web-src)"
  command -v wasm-ld >/dev/null 2>&1 || [ -x /usr/bin/wasm-ld ] || echo "wasm-ld (Debian package lld)"
  [ -f "$WASI_SYSROOT/libc.a" ] && [ -f "$WASI_SYSROOT/crt1-reactor.o" ] \
    || echo "wasi-libc at $WASI_SYSROOT (Debian package wasi-libc)"
}
missing="$(missing_tools)"
if [ -n "$missing" ]; then
  say "missing: $(echo "$missing" | paste -sd';' -)"
  if ! command -v apt-get >/dev/null 2>&1; then
    say "error: not a Debian-like system; install Rust >= 1.85 with rust-src, wasm-ld and wasi-libc"
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      say "error: need root (or sudo) to apt-get install the guest toolchain"; exit 1; fi
  fi
  say "installing the guest toolchain: apt-get install rustc-web cargo-web rust-web-src lld wasi-libc"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    rustc-web cargo-web rust-web-src lld wasi-libc >&2
  missing="$(missing_tools)"
  if [ -n "$missing" ]; then
    say "error: still missing after apt-get install: $(echo "$missing" | paste -sd';' -)"
    exit 1
  fi
fi
WASM_LD="$(command -v wasm-ld || echo /usr/bin/wasm-ld)"

# ---- 2. the guests: one cargo per guest workspace, std built once into target/guests -----
guest_cargo() {
  # (an exported RUSTFLAGS, even empty, would override the per-target flags below)
  env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u RUSTUP_TOOLCHAIN \
    RUSTC="$GUEST_RUSTC" RUSTDOC="${GUEST_RUSTC%rustc}rustdoc" RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_WASIP1_LINKER="$WASM_LD" \
    CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C link-self-contained=no -L $WASI_SYSROOT -C link-arg=$WASI_SYSROOT/crt1-reactor.o" \
    "$GUEST_CARGO" "$@"
}
CARGO_QUIET=()
[ "$QUIET" = 1 ] && CARGO_QUIET=(-q)

t0=$(date +%s)
BUILD_STD=(--release -Zbuild-std=std,panic_abort --target wasm32-wasip1 --target-dir "$GUEST_TARGET_DIR")
step "building plugins/ for wasm32-wasip1 (build-std, cached in target/guests)"
(cd plugins && guest_cargo build "${CARGO_QUIET[@]}" "${BUILD_STD[@]}" --workspace)
step "building guest-sdk/examples/hello.rs (the README example)"
(cd guest-sdk && guest_cargo build "${CARGO_QUIET[@]}" "${BUILD_STD[@]}" --example hello)
t1=$(date +%s)
step "wasm build took $((t1 - t0)) s"

if [ "$DOCTEST" = 1 ]; then
  step "running guest-sdk's unit tests and README doctest on the host"
  # (--lib and --doc separately: the cdylib example does not link natively, its export names
  #  are not valid in a GNU ld version script; the wasm build above covers it)
  for what in --lib --doc; do
    (cd guest-sdk && env -u RUSTUP_TOOLCHAIN RUSTC="$GUEST_RUSTC" RUSTDOC="${GUEST_RUSTC%rustc}rustdoc" \
       "$GUEST_CARGO" test "${CARGO_QUIET[@]}" "$what" --target-dir "$GUEST_TARGET_DIR")
  done
fi

# ---- 3. the componentize tool (host toolchain, normal target/) ---------------------------
HOST_CARGO="${HOST_CARGO:-$(command -v cargo || echo "$GUEST_CARGO")}"
tool_stale() {
  [ "$FORCE" = 1 ] || [ ! -x "$TOOL" ] && return 0
  [ -n "$(find "${TOOL_SOURCES[@]}" Cargo.lock -newer "$TOOL" -print -quit 2>/dev/null)" ]
}
if tool_stale; then
  step "building the componentize tool (cargo build -p weft-plugins --bin weft-componentize)"
  "$HOST_CARGO" build "${CARGO_QUIET[@]}" -p weft-plugins --bin weft-componentize
else
  step "componentize tool up to date (${TOOL#"$ROOT"/})"
fi
[ -x "$TOOL" ] || { say "error: $TOOL was not built"; exit 1; }

# ---- 4. componentize what changed --------------------------------------------------------
# pkg_name DIR -> the [package] name in DIR/Cargo.toml
pkg_name() {
  sed -n '/^\[package\]/,/^\[/{s/^name *= *"\(.*\)".*/\1/p}' "$1/Cargo.toml" | head -n1
}
pairs=()     # IN OUT pairs that need (re)componentizing
outputs=()   # every output, for the stamp
plan() {     # plan CORE_WASM OUT_WASM [SIDECAR_SRC]
  local core="$1" out="$2" side="${3:-}"
  [ -f "$core" ] || { say "error: $core was not built"; exit 1; }
  outputs+=("$out")
  if [ "$FORCE" = 1 ] || [ ! -f "$out" ] || [ "$core" -nt "$out" ] || [ "$TOOL" -nt "$out" ]; then
    pairs+=("$core" "$out")
  fi
  if [ -n "$side" ] && [ -f "$side" ]; then
    local dest="${out%.wasm}.plugin.json"
    if [ ! -f "$dest" ] || ! cmp -s "$side" "$dest"; then
      mkdir -p "$(dirname "$dest")"
      cp "$side" "$dest"
      step "wrote ${dest#"$ROOT"/}"
    fi
    outputs+=("$dest")
  fi
}
for dir in plugins/*/ plugins/hostile/*/; do
  dir="${dir%/}"
  [ -f "$dir/Cargo.toml" ] || continue
  name="$(pkg_name "$dir")"
  lib="${name//-/_}"
  base="$(basename "$dir")"
  case "$dir" in
    plugins/hostile/*) dest="$OUT/hostile/$base.wasm" ;;
    *) dest="$OUT/$base.wasm" ;;
  esac
  plan "$WASM_OUT/$lib.wasm" "$dest" "$dir/weft-plugin.json"
done
plan "$WASM_OUT/examples/hello.wasm" "$OUT/examples/hello.wasm"

if [ "${#pairs[@]}" -gt 0 ]; then
  step "componentizing $(( ${#pairs[@]} / 2 )) module(s)"
  "$TOOL" "${pairs[@]}"
else
  step "all components up to date"
fi

# Stale outputs of plugins that no longer exist are left alone; the stamp lists what exists.
printf '%s\n' "${outputs[@]}" >> "$STAMP.new" && mv "$STAMP.new" "$STAMP"
step "done in $(( $(date +%s) - t0 )) s: $(ls "$OUT"/*.wasm | wc -l) plugins in target/plugins, $(ls "$OUT"/hostile/*.wasm | wc -l) hostile in target/plugins/hostile"
