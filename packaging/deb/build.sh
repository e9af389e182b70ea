#!/bin/bash
# Build mrod_VERSION_ARCH.deb (and the wheel + sdist it is made from) from a checkout.
#   packaging/deb/build.sh [SOURCE_DIR] [OUT_DIR]
# mrod goes into its own venv, /usr/lib/mrod/venv, built with Debian's /usr/bin/python3: the
# dependencies exactly as packaging/deb/requirements.lock pins them (versions and hashes, so two
# builds of one commit install the same code; `make lock` changes it), fetched from PyPI here, at
# build time — installing the .deb needs no network — then the wheel of SOURCE_DIR.
# The version is the wheel's (pyproject's [tool.mrod] release + .devN+gHASH from git, see
# packaging/backend/mrod_build.py), ".dev" spelt "~dev" so that dpkg sorts it before the release.
# SOURCE_DIR is a git clone with its full history, or an unpacked sdist of mrod.
# Needs dpkg-deb, python3-venv and git (`make deb` installs them).
set -euo pipefail

SRC=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
OUT=$(mkdir -p "${2:-$SRC/dist}" && cd "${2:-$SRC/dist}" && pwd)
PYTHON=/usr/bin/python3
# Under /usr/lib, not /opt: dpkg owns every directory a package ships, and /opt belongs to no
# other package, so purging mrod would try to remove /opt itself (and warn that it is not empty).
PREFIX=/usr/lib/mrod
VENV=$PREFIX/venv
ARCH=$(dpkg --print-architecture)
PYVER=$($PYTHON -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
NEXT=$($PYTHON -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1] + 1}")')
HERE=$SRC/packaging/deb
LOCK=$HERE/requirements.lock

WORK=$(mktemp -d /tmp/mrod-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/root

echo "== wheel and sdist of $SRC"
$PYTHON -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install --quiet --disable-pip-version-check build
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$SRC" >"$WORK/build.log" 2>&1 || {
    tail -n 30 "$WORK/build.log"; exit 1; }
WHEEL=$(ls "$WORK"/dist/mrod-*.whl)

echo "== venv $VENV"
PIP=("$WORK/tools/bin/pip" --python "$STAGE$VENV/bin/python" --disable-pip-version-check)
$PYTHON -m venv --without-pip "$STAGE$VENV"
"${PIP[@]}" install --quiet --no-compile --no-warn-script-location --require-hashes --no-deps -r "$LOCK"
"${PIP[@]}" install --quiet --no-compile --no-warn-script-location --no-deps "$WHEEL"
# What the wheel needs and the lock lacks (a dependency added without `make lock`) stops the build.
"${PIP[@]}" check >"$WORK/check.log" 2>&1 || {
    cat "$WORK/check.log"; echo "$LOCK does not satisfy mrod's dependencies: run make lock"; exit 1; }
# The venv was made under $STAGE: point its scripts and records at where it is installed.
grep -rlI --null -F "$STAGE" "$STAGE$VENV" | xargs -0 -r sed -i "s|$STAGE||g"
# Byte-code compiled now, naming the installed paths (the service user cannot write there).
$PYTHON -m compileall -q -j 0 -s "$STAGE" -p / "$STAGE$VENV/lib" >/dev/null
# -I: the venv's own packages only (not a checkout's mrod.egg-info in the current directory).
PYPI_VERSION=$("$STAGE$VENV/bin/python" -I -c 'from importlib.metadata import version; print(version("mrod"))')
VERSION=${PYPI_VERSION/.dev/\~dev}

echo "== files"
install -d "$STAGE/usr/bin" "$STAGE/etc/mrod" "$STAGE/lib/systemd/system" "$STAGE/usr/share/doc/mrod" "$STAGE/DEBIAN"
ln -s "$VENV/bin/mrod" "$STAGE/usr/bin/mrod"
install -m 0640 "$HERE/mrod.toml" "$STAGE/etc/mrod/mrod.toml"
# Every unit in postfix-snippets (mrod.service, mrod.socket, the postsuper helper's
# mrod-postsuper.socket and mrod-postsuper@.service).
for unit in "$SRC"/postfix-snippets/mrod*.service "$SRC"/postfix-snippets/mrod*.socket; do
    [ -e "$unit" ] && install -m 0644 "$unit" "$STAGE/lib/systemd/system/"
done
DOC=$STAGE/usr/share/doc/mrod
install -m 0644 "$SRC/README.md" "$SRC/CHANGELOG.md" "$DOC/"
install -m 0644 "$SRC/LICENSE" "$DOC/copyright"
cp -r "$SRC/docs" "$SRC/postfix-snippets" "$DOC/"
cp -r "$SRC/contrib/fail2ban" "$DOC/fail2ban"
find "$DOC" -type d -exec chmod 0755 {} + ; find "$DOC" -type f -exec chmod 0644 {} +

echo "== control"
# postfix: mrod answers Postfix's lookups and flushes its queue, and the unit runs in postfix's
# group postdrop (systemd refuses to start a unit whose group does not exist: 216/GROUP).
# libpq5: psycopg, in the venv, loads libpq for [database] url (PostgreSQL).
install -m 0755 "$HERE/postinst" "$HERE/prerm" "$HERE/postrm" "$STAGE/DEBIAN/"
echo "/etc/mrod/mrod.toml" > "$STAGE/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: mrod
Version: $VERSION
Architecture: $ARCH
Maintainer: mrod developers <root@localhost>
Installed-Size: $SIZE
Depends: python3 (>= $PYVER), python3 (<< $NEXT), adduser, init-system-helpers (>= 1.52), postfix, libpq5
Recommends: sqlite3, openssl
Suggests: fail2ban
Section: mail
Priority: optional
Homepage: https://github.com/mrod/mrod
Description: backup-MX manager for Postfix
 mrod tells Postfix live which domains to relay as a backup MX, to which primary, which
 recipients are real and which TLS to demand (socketmap/tcp_table/policy lookups answered
 from SQLite), with an admin panel, a JSON API, health probes and a BIND zone importer.
CONTROL

DEB=$OUT/mrod_${VERSION}_${ARCH}.deb
# gzip: every dpkg reads it, and it packs the 42 MB venv in ~5 s where xz took over a minute
# (12 MB against 9: a local package, not a mirror's).
dpkg-deb --root-owner-group -Zgzip --build "$STAGE" "$DEB" >/dev/null
cp "$WORK"/dist/* "$OUT/"
echo "$DEB"
