#!/usr/bin/env bash
# Regenerate the DBSCAN reference labels: our cases, labelled by scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c 'import sklearn' 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-sklearn
fi
npx node scripts/dbscan-cases.ts
/usr/bin/python3 scripts/dbscan_reference.py
