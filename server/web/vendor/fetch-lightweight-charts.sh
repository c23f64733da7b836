#!/usr/bin/env bash
# Re-fetches the vendored TradingView lightweight-charts standalone build from npm, by version, and checks
# its sha256 before replacing the committed copy. The server compiles the file in (server/src/http/chart.rs),
# so neither the build nor the page needs Node or a CDN; this script is the only place npm is used.
#
#   bash server/web/vendor/fetch-lightweight-charts.sh            # re-fetch 5.2.1, verify, copy
#   VERSION=5.x.y SHA256=<hash> bash server/web/vendor/fetch-lightweight-charts.sh   # upgrade
#
# An upgrade also changes the versioned asset path in chart.rs and chart.html. NOTICE is not in the npm
# tarball: take it from the tradingview/lightweight-charts repository at the matching tag.
set -euo pipefail
VERSION=${VERSION:-5.2.1}
SHA256=${SHA256:-e21cc5caa0226ef30bd8549c50b9ef926615f2a4ee6b4e486353477a55f598cf}
FILE=lightweight-charts.standalone.production.js
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "lightweight-charts@$VERSION" >/dev/null)
tar -xzf "$work/lightweight-charts-$VERSION.tgz" -C "$work"
actual=$(sha256sum "$work/package/dist/$FILE" | cut -d' ' -f1)
if [ "$actual" != "$SHA256" ]; then
    echo "sha256 mismatch for lightweight-charts@$VERSION $FILE: expected $SHA256, got $actual" >&2
    exit 1
fi
cp "$work/package/dist/$FILE" "$here/$FILE"
cp "$work/package/LICENSE" "$here/LICENSE"
echo "lightweight-charts@$VERSION: $FILE verified ($SHA256) and copied with its LICENSE to $here"
