#!/usr/bin/env bash
# Re-run the experiments behind docs/experiments.md: `bash scripts/reproduce-experiments.sh [OUT]`
# (default OUT=out/paper). Everything is seeded: the same commit gives the same numbers.
# Roughly 2 hours on a 2-core machine, most of it the 100-client thresholds grid; pass a
# subset as further arguments: attack, robustness, strategies, rewards, thresholds, provisioning
# (and kem, not run by default).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/paper}
shift || true
parts=${*:-attack robustness strategies rewards thresholds provisioning}
bfl() { npx --no-install bfl-node "$@"; }
mkdir -p "$out"
for part in $parts; do
  case $part in
    attack)
      # 10 clients, 3 attackers rotating (case i), η = 0.01, 20 aggregations; IID and non-IID
      for partition in iid noniid; do
        for attack in sign-flip scale:10 noise:0.05 label-flip alie:1 ipm:0.5; do
          bfl experiment attack --attack "$attack" --partition "$partition" --out "$out/attack" --json > /dev/null
          bfl experiment attack --attack "$attack" --partition "$partition" --max-norm-ratio off --out "$out/attack" --json > /dev/null
          bfl experiment attack --attack "$attack" --partition "$partition" --aggregator fedavg --out "$out/attack" --json > /dev/null
        done
      done
      node scripts/attack-table.ts "$out/attack" | tee "$out/attack.md"
      ;;
    robustness) bfl experiment robustness --attacks sign-flip,scale:10,noise:0.05,label-flip,alie:1,ipm:0.5 --out "$out" --json > "$out/robustness.summary.json" ;;
    strategies) bfl experiment strategies --out "$out" --json > "$out/strategies.summary.json" ;;
    rewards) bfl experiment rewards --out "$out" --json > "$out/rewards.summary.json" ;;
    thresholds) bfl experiment thresholds --out "$out" --json > "$out/thresholds.summary.json" ;;
    # QKD planner (Figs. 5-8 of the QKD paper), NSFNET and USNET, ~10 min; PNGs copied to docs/figures
    provisioning) nice -n 10 npx --no-install bfl-node experiment provisioning --out "$out/provisioning" --json > "$out/provisioning.summary.json" ;;
    # not in the default set: ML-KEM micro-benchmarks and the testnet sealed vs clear (README), ~10 min
    kem) nice -n 10 npx --no-install bfl-node bench kem --testnet --repeats 2 --json > "$out/kem.json" ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
