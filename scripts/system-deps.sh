#!/usr/bin/env bash
# System packages kpireport uses beyond Python. WeasyPrint needs Pango (present on most
# Debian/Ubuntu images); libharfbuzz-subset0 makes PDF font subsetting ~2.5x faster;
# poppler-utils, chromium, libreoffice-calc-nogui and npm (which installs axe-core, see
# scripts/test-deps.sh) are used by the test suite only.
# Installs with apt-get when run as root on Debian/Ubuntu; otherwise prints what is missing.
set -u
runtime=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)
testing=(poppler-utils chromium libreoffice-calc-nogui)
# Debian's npm conflicts with NodeSource's nodejs, which carries npm itself: only when none.
command -v npm >/dev/null || testing+=(npm)
want=("${runtime[@]}")
[ "${1:-}" = "--test" ] && want+=("${testing[@]}")
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Note: these system packages are missing: ${missing[*]}" >&2
  echo "      (install them with your package manager; see README 'System libraries')" >&2
fi
exit 0
