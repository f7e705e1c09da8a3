#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine, then lints and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    need=()
    [ -x /usr/bin/chromium ] || need+=(chromium)
    [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
fi

python -m pip install -q -r requirements.txt -e ".[dev,distributed]"  # distributed: the Ray engine is tested too

# axe-core (npm), the accessibility checker the browser tests inject into the page
if [ ! -f .cache/axe/node_modules/axe-core/axe.min.js ]; then
    npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@4
fi

python -m ruff check .
python -m ruff format --check .

export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
python -m pytest -q -p no:cacheprovider "$@"
