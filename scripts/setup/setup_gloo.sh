#!/usr/bin/env bash
# scripts/setup/setup_gloo.sh ROOT CACHE: the gloo headers that libtorch's
# ProcessGroupGloo.hpp includes, for mose's c10d shim (internal/dist).
#
# libtorch ships the c10d headers and the gloo implementation (inside
# libtorch_cpu.so) but not gloo's headers. Debian's libgloo-dev has them; only
# declarations are used, so the package's headers are enough. Fetched without
# root: `apt-get download` + `dpkg -x` into ${MOSE_CACHE}/gloo/<version>/, once;
# .build/gloo points there. MOSE_GLOO_INCLUDE=/path/to/include uses an existing
# copy instead (a folder holding gloo/algorithm.h).
set -euo pipefail
ROOT=$1
CACHE=$2
die() {
	echo "setup: error: $*" >&2
	exit 1
}
if [ -n "${MOSE_GLOO_INCLUDE:-}" ]; then
	[ -f "$MOSE_GLOO_INCLUDE/gloo/algorithm.h" ] ||
		die "MOSE_GLOO_INCLUDE=$MOSE_GLOO_INCLUDE has no gloo/algorithm.h; fix: point it at the folder holding gloo/, or unset it"
	mkdir -p "$ROOT/.build/gloo"
	ln -sfn "$(cd "$MOSE_GLOO_INCLUDE" && pwd)" "$ROOT/.build/gloo/include"
	exit 0
fi
have=$(ls -d "$CACHE"/gloo/*/include/gloo 2>/dev/null | head -1 || true)
if [ -z "$have" ]; then
	command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
		die "the gloo headers are missing and apt-get/dpkg are not available to fetch them; fix: install libgloo-dev's headers somewhere and set MOSE_GLOO_INCLUDE=/that/include"
	tmp=$(mktemp -d "$CACHE/.gloo.XXXXXX")
	echo "setup: fetching the gloo headers (Debian libgloo-dev, headers only) into $CACHE/gloo" >&2
	if ! (cd "$tmp" && apt-get download libgloo-dev >"$tmp/apt.log" 2>&1); then
		apt-get update -qq >/dev/null 2>&1 || true
		(cd "$tmp" && apt-get download libgloo-dev >"$tmp/apt.log" 2>&1) ||
			die "apt-get download libgloo-dev failed: $(tail -1 "$tmp/apt.log"); fix: make Debian's archive reachable, or set MOSE_GLOO_INCLUDE"
	fi
	deb=$(ls "$tmp"/libgloo-dev_*.deb | head -1)
	ver=$(dpkg-deb -f "$deb" Version | tr -c 'A-Za-z0-9.+\n-' '_')
	dpkg -x "$deb" "$tmp/x"
	[ -f "$tmp/x/usr/include/gloo/algorithm.h" ] || die "$deb holds no usr/include/gloo/algorithm.h"
	mkdir -p "$CACHE/gloo/$ver"
	rm -rf "$CACHE/gloo/$ver/include"
	mv "$tmp/x/usr/include" "$CACHE/gloo/$ver/include"
	rm -rf "$tmp"
	have=$CACHE/gloo/$ver/include/gloo
fi
mkdir -p "$ROOT/.build/gloo"
ln -sfn "$(dirname "$have")" "$ROOT/.build/gloo/include"
