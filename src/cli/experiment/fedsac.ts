import { Command } from 'commander';
import { RL_METHODS, type RlMethod } from '../../qkd/rl/learners.ts';
import { defaultFedSacExperiment, runFedSacExperiment } from '../../experiments/fedsac.ts';
import { progress } from '../../experiments/progress.ts';
import { UsageError, parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

/** `experiment fedsac`: the QKD paper's Fig. 9 (src/qkd/rl/). */
export function fedsacCommand(): Command {
  const d = defaultFedSacExperiment;
  return new Command('fedsac')
    .description("learning the QKD allocation (the QKD paper's Fig. 9): cost per epoch of FedSAC, DecSAC and DecPPO against the SIP optimum; epochs to converge (within 5 % of SIP for good)")
    .option('--topology <t>', 'nsfnet or usnet', d.topology)
    .option('--methods <list>', RL_METHODS.join(', '), d.methods.join(','))
    .option('--epochs <n>', 'training epochs', parseIntFlag('--epochs', 1, 10_000), d.epochs)
    .option('--slots <n>', 'decision slots per epoch', parseIntFlag('--slots', 1, 10_000), d.slots)
    .option('--lr-policy <rate>', 'policy learning rate', parseNumberFlag('--lr-policy', 1e-9, 1), d.lrPolicy)
    .option('--seed <n>', 'seed', parseIntFlag('--seed', 0, 2 ** 32 - 1), d.seed)
    .option('--out <dir>', 'write CSV, JSON and plots here', d.out)
    .option('--json', 'print the summary as JSON', false)
    .action(async (o: { topology: string; methods: string; epochs: number; slots: number; lrPolicy: number; seed: number; out: string; json: boolean }) => {
      if (o.topology !== 'nsfnet' && o.topology !== 'usnet') throw new UsageError('--topology must be nsfnet or usnet');
      const methods = o.methods.split(',');
      for (const m of methods) if (!(RL_METHODS as string[]).includes(m)) throw new UsageError(`unknown method ${m}: use ${RL_METHODS.join(', ')}`);
      const bar = progress(methods.length * o.epochs);
      const r = await runFedSacExperiment({ ...d, topology: o.topology, methods: methods as RlMethod[], epochs: o.epochs, slots: o.slots, lrPolicy: o.lrPolicy, seed: o.seed, out: o.out, onEpoch: (m, e, ratio) => bar(`${m}: epoch ${e}, cost ${ratio.toFixed(3)}× SIP`) });
      bar.done();
      if (o.json) printJson(r);
      else {
        print(`${r.topology}: ${r.agents} controllers (${r.managers} managers) over ${r.links} links; SIP optimum ${Math.round(r.sipCost).toLocaleString('en-US')}`);
        for (const [m, x] of Object.entries(r.methods)) print(`  ${m.padEnd(7)} converged ${x.epochsToConverge === null ? 'never' : `at epoch ${x.epochsToConverge}`}, final cost ${x.finalCostRatioToSip.toFixed(3)}× SIP (${x.seconds} s)`);
        print(`wrote ${r.files.join(', ')}`);
      }
    });
}
