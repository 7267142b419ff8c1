#!/usr/bin/env bash
# Body of `make deb`: builds libapache2-mod-pushstream_<version>_<arch>.deb
# with Debian's tools (debhelper + dh_apache2 from apache2-dev).
#
#   build/deb.sh OUT_DIR
#
# The project's top level has no debian/ (its layout is fixed), so this
# copies the project into OUT_DIR/src with build/debian/ as src/debian/,
# runs `dpkg-buildpackage -b -us -uc` there (the .deb, .buildinfo and
# .changes land in OUT_DIR), then lintian on the .deb: its tags are printed,
# an error fails.  Prints the .deb's path as the last line.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${1:?usage: build/deb.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/src

rm -rf "$src"
mkdir -p "$src"
# the working tree as it is (uncommitted changes too), without build output
# (nor OUT_DIR itself, when it lies inside the tree)
excl=()
case "$out/" in
"$root"/*) excl=(--exclude="./${out#"$root"/}") ;;
esac
tar -C "$root" --exclude=./.git --exclude='./.build*' --exclude=__pycache__ \
    --exclude='*.pyc' --exclude=./debian "${excl[@]}" -cf - . | tar -C "$src" -xf -
cp -r "$root/build/debian" "$src/debian"

version=$(cd "$src" && dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$out/libapache2-mod-pushstream_${version}_${arch}.deb
rm -f "$deb"

echo "deb.sh: dpkg-buildpackage -b -us -uc in $src (log: $out/build.log)"
if ! (cd "$src" && dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1; then
    tail -40 "$out/build.log"
    echo "deb.sh: dpkg-buildpackage failed (full log: $out/build.log)" >&2
    exit 1
fi
[ -f "$deb" ] || { echo "deb.sh: $deb was not built" >&2; exit 1; }

# lintian: every tag shown, errors fail (warnings are reported, not fatal)
echo "deb.sh: lintian"
set +e
lintian --fail-on error --tag-display-limit 0 "$deb" | tee "$out/lintian.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    echo "deb.sh: lintian found errors (rc=$rc)" >&2
    exit 1
fi
echo "deb.sh: lintian: $(grep -c '^E:' "$out/lintian.log" || true) errors," \
     "$(grep -c '^W:' "$out/lintian.log" || true) warnings"
echo "$deb"
