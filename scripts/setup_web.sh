#!/usr/bin/env bash
# Set up the browser port of Real-CUGAN (issue 21), beside the project venv that scripts/setup.sh makes:
#   1. chromium, pinned, from Debian apt (the headless browser tests/test_web_port.py drives through
#      Playwright; `playwright install` is never run: its browsers download from a CDN);
#   2. Node.js (apt nodejs when `node` is missing) and `npm ci` in web/: the exact @tensorflow/tfjs
#      and @tensorflow/tfjs-backend-wasm of web/package-lock.json (no tfjs-node: its native binary
#      downloads from Google storage);
#   3. .venv-tfjs: the tensorflowjs converter in its own venv, every package pinned by
#      web/requirements-tfjs.txt (tensorflowjs 4.22 needs tensorflow 2.19 / numpy 2.1 / protobuf 5,
#      older than requirements/lock.txt, so it cannot live in .venv).
# Re-running on a set-up machine checks a stamp and returns in a second. Set ACG2VEC_WEB_SKIP_APT=1 to
# skip the apt step (a machine without root where chromium is already there).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
CHROMIUM_VERSION=150.0.7871.100-1~deb12u1
TFJS_VENV=${TFJS_VENV:-.venv-tfjs}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x .venv/bin/python ] && PYTHON=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')

stamp_of() { cat scripts/setup_web.sh web/package.json web/package-lock.json web/requirements-tfjs.txt | sha256sum | cut -c1-16; }
want=$(stamp_of)
have_chromium() { dpkg-query -W -f='${Version}' chromium 2>/dev/null | grep -qx "$CHROMIUM_VERSION"; }
if [ -f "$TFJS_VENV/.setup-stamp" ] && [ "$(cat "$TFJS_VENV/.setup-stamp")" = "$want" ] \
   && [ -x "$TFJS_VENV/bin/tensorflowjs_converter" ] && [ -f web/node_modules/@tensorflow/tfjs/package.json ] \
   && { [ "${ACG2VEC_WEB_SKIP_APT:-0}" = 1 ] || have_chromium; }; then
  echo "setup_web: up to date (stamp $want); nothing to do"
  exit 0
fi

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

# 1. chromium (pinned) and, when missing, node
if [ "${ACG2VEC_WEB_SKIP_APT:-0}" != 1 ]; then
  pkgs=()
  # chromium-common pinned too: a newer security build of it would otherwise be chosen and clash
  have_chromium || pkgs+=("chromium=$CHROMIUM_VERSION" "chromium-common=$CHROMIUM_VERSION")
  command -v node >/dev/null || pkgs+=(nodejs npm)
  [ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
fi
command -v node >/dev/null || { echo "setup_web: node is missing (apt-get install nodejs npm)" >&2; exit 2; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
  || { echo "setup_web: Node.js >= 18 is required, found $(node --version)" >&2; exit 2; }

# 2. the pinned npm packages (no install scripts needed)
(cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

# 3. the converter venv
[ -x "$TFJS_VENV/bin/python" ] || "$PYTHON" -m venv "$TFJS_VENV"
"$TFJS_VENV/bin/python" -m pip install --quiet --upgrade "pip==25.3"
"$TFJS_VENV/bin/python" -m pip install --quiet --progress-bar off --no-deps -r web/requirements-tfjs.txt
"$TFJS_VENV/bin/python" -m pip check >/dev/null || { "$TFJS_VENV/bin/python" -m pip check; exit 1; }
"$TFJS_VENV/bin/python" -c 'import tensorflowjs.converters' 2>/dev/null \
  || { echo "setup_web: tensorflowjs does not import in $TFJS_VENV" >&2; exit 1; }
echo "$want" > "$TFJS_VENV/.setup-stamp"
echo "setup_web: done in $(( $(date +%s) - start )) s (chromium $CHROMIUM_VERSION, web/node_modules, $TFJS_VENV)"
