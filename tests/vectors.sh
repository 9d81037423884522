#!/bin/sh
# Fetches the NIST PKITS path-validation vectors (as shipped in the pyhanko-certvalidator
# sdist) into tests/.vectors/nist_pkits; does nothing when they are already there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=0.33.0
dest="$here/.vectors/nist_pkits"
if [ -f "$dest/pkits.json" ]; then
    exit 0
fi
python=${PYTHON:-"$here/../.venv/bin/python"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" \
    "pyhanko-certvalidator==$version"
tar -xzf "$tmp/pyhanko_certvalidator-$version.tar.gz" -C "$tmp" \
    "pyhanko_certvalidator-$version/tests/fixtures/nist_pkits"
mkdir -p "$here/.vectors"
rm -rf "$dest.partial"
cp -R "$tmp/pyhanko_certvalidator-$version/tests/fixtures/nist_pkits" "$dest.partial"
mv "$dest.partial" "$dest"
echo "PKITS vectors in $dest"
