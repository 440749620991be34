# Sourced by scripts/run and scripts/test: find Python >= 3.10, make .venv, install extras.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=""
for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3.10 python3; do
  if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    PY=$candidate; break
  fi
done
[[ -n "$PY" ]] || { echo "error: Python >= 3.10 is required (set PYTHON=/path/to/python)" >&2; exit 1; }
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# DJANGO_REQUIREMENT (e.g. "django==6.1.*") pins the Django installed with the extras.
stamp=.venv/.installed-$1
want="$1 ${DJANGO_REQUIREMENT:-}"
if [[ ! -f $stamp || pyproject.toml -nt $stamp || $(<"$stamp") != "$want" ]]; then
  $VPY -m pip install -q --disable-pip-version-check --upgrade pip
  $VPY -m pip install -q --disable-pip-version-check -e ".[$1]" ${DJANGO_REQUIREMENT:+"$DJANGO_REQUIREMENT"}
  echo "$want" > "$stamp"
fi
