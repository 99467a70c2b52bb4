#!/usr/bin/env bash
# Set up the workbook on a fresh machine: a virtual environment in .venv with the locked packages,
# the package installed editable with its dev extras, and the Jupyter kernel "acg2vec-lab"
# registered inside the environment (papermill uses it). Re-running on a set-up machine checks a
# stamp and returns in a second without changing anything.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup: Python 3.11 is required; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
  exit 2
fi

stamp_of() { cat pyproject.toml requirements/lock.txt scripts/setup.sh | sha256sum | cut -c1-16; }
want=$(stamp_of)
if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$want" ] \
   && "$VENV/bin/python" -c 'import acg2vec_lab' 2>/dev/null \
   && "$VENV/bin/jupyter" kernelspec list 2>/dev/null | grep -q '^ *acg2vec-lab '; then
  echo "setup: $VENV is up to date (stamp $want); nothing to do"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip==25.3" "setuptools>=68" wheel
# The lock pins every package, torch included: the registry's standard build (it runs on the CPU
# here). The local CPU-only torch wheel is a different version and is never picked.
"$VENV/bin/python" -m pip install --quiet --progress-bar off -c requirements/lock.txt -e ".[dev]"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name acg2vec-lab --display-name "Python (acg2vec-lab)" >/dev/null
"$VENV/bin/python" -m pip check >/dev/null || { "$VENV/bin/python" -m pip check; exit 1; }
echo "$want" > "$VENV/.setup-stamp"
echo "setup: done in $(( $(date +%s) - start )) s ($VENV, kernel acg2vec-lab)"
