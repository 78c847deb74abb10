import { Command } from 'commander';
import { BUILTIN_TOPOLOGIES } from '../../qkd/model.ts';
import { defaultProvisioning, runProvisioning } from '../../experiments/provisioning.ts';
import { progress } from '../../experiments/progress.ts';
import { UsageError, parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

const list = (name: string, integer: boolean) => (v: string) => {
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x)))) throw new UsageError(`${name} takes comma-separated ${integer ? 'whole' : 'positive'} numbers, got "${v}"`);
  return xs;
};

/** `experiment provisioning`: the QKD planner's Figs. 5-8 (src/qkd/provisioning.ts). */
export function provisioningCommand(): Command {
  const d = defaultProvisioning;
  return new Command('provisioning')
    .description("QKD provisioning, the QKD paper's Figs. 5-8: cost structure against the reservation, and SIP vs QBN-EVF vs QBN-Random against requests, scenarios and the on-demand price factor")
    .option('--topologies <list>', 'nsfnet, usnet (comma-separated)', d.topologies.join(','))
    .option('--nsfnet-requests <list>', '|R| values on NSFNET (Fig. 6)', list('--nsfnet-requests', true), d.requests.nsfnet)
    .option('--usnet-requests <list>', '|R| values on USNET (Fig. 6)', list('--usnet-requests', true), d.requests.usnet)
    .option('--scenarios <list>', '|Ω| values (Fig. 7)', list('--scenarios', true), d.scenarios)
    .option('--factors <list>', 'on-demand price factors (Fig. 8)', list('--factors', false), d.factors)
    .option('--seed <n>', 'seed of the requests and of QBN-Random', parseIntFlag('--seed', 0, 2 ** 32 - 1), d.seed)
    .option('--time-limit <s>', 'seconds per HiGHS solve', parseNumberFlag('--time-limit', 0.1, 86_400), d.timeLimit)
    .option('--out <dir>', 'write CSV, JSON and plots here', d.out)
    .option('--json', 'print the summary as JSON', false)
    .action(async (o: { topologies: string; nsfnetRequests: number[]; usnetRequests: number[]; scenarios: number[]; factors: number[]; seed: number; timeLimit: number; out: string; json: boolean }) => {
      const topologies = o.topologies.split(',');
      for (const t of topologies) if (!(BUILTIN_TOPOLOGIES as readonly string[]).includes(t)) throw new UsageError(`unknown topology ${t}: use ${BUILTIN_TOPOLOGIES.join(', ')}`);
      const steps = topologies.reduce((n, t) => n + d.levels + 1 + 3 * ((t === 'nsfnet' ? o.nsfnetRequests : o.usnetRequests).length + o.scenarios.length + o.factors.length), 0);
      const bar = progress(steps);
      const r = await runProvisioning({
        ...d,
        topologies,
        requests: { nsfnet: o.nsfnetRequests, usnet: o.usnetRequests },
        scenarios: o.scenarios,
        factors: o.factors,
        seed: o.seed,
        timeLimit: o.timeLimit,
        out: o.out,
        onStep: (label) => bar(label),
      });
      bar.done();
      if (o.json) printJson({ ...r.summary, files: r.files });
      else {
        for (const [name, s] of Object.entries(r.summary.topologies)) {
          print(`${name} (|R| = ${s.requests}, |Ω| = 10): EVF ${s.evfOverSip.toFixed(3)}× SIP, Random ${s.randomOverSip.toFixed(3)}× SIP; SIP solved in ${(s.sipSolveMs / 1000).toFixed(1)} s; cheapest uniform reservation ${s.bestReserved} QKD links per request`);
        }
        print(`wrote ${r.files.join(', ')}`);
      }
    });
}
