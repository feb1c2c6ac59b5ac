#!/usr/bin/env bash
# Test tools from npm: axe-core, which the browser tests inject to check every page's
# accessibility (tests/test_web_a11y.py). Installed into .cache/axe (git-ignored) once per
# version; without npm it says so, and those tests skip (or fail in CI, KPIREPORT_REQUIRE_TOOLS=1).
set -u
version="${1:?usage: scripts/test-deps.sh AXE_VERSION}"
cd "$(dirname "$0")/.."
target=.cache/axe
installed=$(node -p "require('./$target/node_modules/axe-core/package.json').version" 2>/dev/null)
[ "$installed" = "$version" ] && exit 0
if ! command -v npm >/dev/null; then
  echo "Note: npm is missing, so axe-core is not installed (the accessibility tests skip)" >&2
  exit 0
fi
mkdir -p "$target"
npm install --silent --no-save --no-audit --no-fund --prefix "$target" "axe-core@$version" \
  && echo "Installed axe-core $version into $target"
