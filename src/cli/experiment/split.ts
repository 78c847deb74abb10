import { Command } from 'commander';
import { type SchedulerName, SCHEDULERS } from '../../association/schedulers.ts';
import { SPLIT_VARIANTS, defaultSplitExperiment, runSplitExperiment, sameRecipe } from '../../experiments/split.ts';
import { progress } from '../../experiments/progress.ts';
import { type AugmentSpec, formatAugment, parseAugment } from '../../learn/augment.ts';
import { type Partition, parsePartition } from '../../learn/partition.ts';
import { UsageError, parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

/** `experiment split`: the DT paper's cloud-edge-client split learning (issue 19, Figs. 10-11). */
export function splitCommand(): Command {
  const d = defaultSplitExperiment;
  return new Command('split')
    .description("split learning (clients train heads, miners train bodies on smashed data; the DT paper's Algorithm 1) vs FedAvg vs centralized: accuracy and loss over rounds per association scheduler with energy budgets (Figs. 10-11), bytes per client per round, and head-handling variants with eq. (4)'s (ε, δ)")
    .option('--rounds <r>', 'rounds R', parseIntFlag('--rounds', 1, 100_000), d.rounds)
    .option('--clients <n>', 'clients N', parseIntFlag('--clients', 1, 1000), d.clients)
    .option('--miners <m>', 'miners (edge servers) M', parseIntFlag('--miners', 1, 64), d.miners)
    .option('--schedulers <list>', `association schedulers for the budgeted runs: ${SCHEDULERS.join(', ')}, or none`, d.schedulers.join(','))
    .option('--samples <n>', 'samples per client per round D_n^r', parseIntFlag('--samples', 1, 100_000), d.samplesPerRound)
    .option('--B <b>', 'minibatch size', parseIntFlag('--B', 1, 100_000), d.batchSize)
    .option('--lr <rate>', 'learning rate η (heads, bodies, FedAvg and centralized alike)', parseNumberFlag('--lr', 1e-9, 100), d.lr)
    .option('--hidden <list>', 'hidden layer widths of the MLP, for split, FedAvg and centralized alike (the product\'s 784-200-10: 200)', d.hidden.join(','))
    .option('--cut <c>', 'dense layers on the client (1 to the number of hidden layers; 1 for the default 784-200-10)', parseIntFlag('--cut', 1, 100), d.cut)
    .option('--epochs <e>', 'passes over each round\'s samples (split, FedAvg and centralized alike)', parseIntFlag('--epochs', 1, 1000), d.epochs)
    .option('--head-init <kind>', 'private (each client draws its own head) or shared (the global initial head, as the product)', d.headInit)
    .option('--head-lr-scale <k>', 'head learning rate as a multiple of --lr', parseNumberFlag('--head-lr-scale', 0, 1000), d.headLrScale)
    .option('--head-decay <λ>', 'weight decay of the head toward its initial head', parseNumberFlag('--head-decay', 0, 1000), d.headDecay)
    .option('--head-share <f>', 'fraction of clients aggregating heads with noise (eq. 4)', parseNumberFlag('--head-share', 0, 1), d.headShare)
    .option('--head-share-every <k>', 'eq. (4) every k rounds', parseIntFlag('--head-share-every', 1, 100_000), d.headShareEvery)
    .option('--head-clip <C>', 'L2 bound on a shared head update (eq. 4; the DP sensitivity)', parseNumberFlag('--head-clip', 1e-6, 1e6), d.headClip)
    .option('--head-noise <z>', 'Gaussian noise on a shared head update, N(0, (z·C)²) per coordinate (eq. 4)', parseNumberFlag('--head-noise', 0, 1000), d.headNoise)
    .option('--dp-delta <δ>', 'δ of the (ε, δ) reported for head sharing', parseNumberFlag('--dp-delta', 1e-12, 0.5), d.dpDelta)
    .option('--variants <list>', `head-handling variants run beside the default: ${Object.keys(SPLIT_VARIANTS).join(', ')}; all or none`, 'all')
    .option('--split-augment <spec>', "augment the split runs' training images (the product's learning.split.augment): none, shift:K (random translation of up to K pixels), rotate:D (up to D degrees) or shift:K,rotate:D", formatAugment(d.splitAugment))
    .option('--split-cut-dropout <p>', "dropout rate on the split runs' cut activations (smashed data; the product's learning.split.cutDropout), 0 for none", parseNumberFlag('--split-cut-dropout', 0, 0.9), d.splitCutDropout)
    .option('--augment <spec>', 'augment the FedAvg and centralized runs\' training images (federated mode has none); where the recipes differ, FedAvg also runs with the split runs\' (accuracyFederatedSplitRecipe)', 'none')
    .option('--cut-dropout <p>', 'dropout rate on the FedAvg and centralized runs\' hidden layer at the cut (the same masks as split\'s), 0 for none', parseNumberFlag('--cut-dropout', 0, 0.95), d.cutDropout)
    .option('--no-heads-averaged', 'skip the split run with every head in eq. (4) every round (accuracySplitHeadsAveraged: null)')
    .option('--budget <lo,hi>', 'energy budgets: U(lo, hi) × R rounds at the median client energy per round', `${d.budget[0]},${d.budget[1]}`)
    .option('--eval-every <k>', 'evaluate on the test set every k rounds', parseIntFlag('--eval-every', 1, 100_000), d.evalEvery)
    .option('--partition <p>', 'iid, shards[:K], dirichlet:α or noniid', 'iid')
    .option('--dataset <name>', 'mnist (embedded), fashion or idx:DIR', d.dataset)
    .option('--seed <n>', 'seed', parseIntFlag('--seed', 0, 2 ** 32 - 1), d.seed)
    .option('--out <dir>', 'write CSV, JSON and plots here', 'out')
    .option('--json', 'print the summary as JSON (curves in <out>/split.json)', false)
    .action(async (o: { rounds: number; clients: number; miners: number; schedulers: string; samples: number; B: number; lr: number; hidden: string; cut: number; epochs: number; headInit: string; headLrScale: number; headDecay: number; headShare: number; headShareEvery: number; headClip: number; headNoise: number; dpDelta: number; variants: string; augment: string; cutDropout: number; splitAugment: string; splitCutDropout: number; headsAveraged: boolean; budget: string; evalEvery: number; partition: string; dataset: string; seed: number; out: string; json: boolean }) => {
      const schedulers = o.schedulers === 'none' ? [] : o.schedulers.split(',');
      for (const s of schedulers) if (!(SCHEDULERS as readonly string[]).includes(s)) throw new UsageError(`unknown scheduler ${s}: use ${SCHEDULERS.join(', ')} or none`);
      if (o.headInit !== 'private' && o.headInit !== 'shared') throw new UsageError('--head-init must be private or shared');
      const variants = o.variants === 'none' ? [] : o.variants === 'all' ? Object.keys(SPLIT_VARIANTS) : o.variants.split(',');
      for (const v of variants) if (!(v in SPLIT_VARIANTS)) throw new UsageError(`unknown variant ${v}: use ${Object.keys(SPLIT_VARIANTS).join(', ')}, all or none`);
      const hidden = o.hidden.split(',').map(Number);
      if (!hidden.every((w) => Number.isInteger(w) && w >= 1 && w <= 100_000)) throw new UsageError(`--hidden takes a comma-separated list of layer widths, integers from 1 to 100000, got "${o.hidden}"`);
      const budget = o.budget.split(',').map(Number);
      if (budget.length !== 2 || !(budget[0] >= 0 && budget[1] >= budget[0])) throw new UsageError(`--budget takes lo,hi with 0 <= lo <= hi, got "${o.budget}"`);
      let augment: AugmentSpec;
      let splitAugment: AugmentSpec;
      try {
        augment = parseAugment(o.augment);
      } catch (e) {
        throw new UsageError(`--${(e as Error).message}`);
      }
      try {
        splitAugment = parseAugment(o.splitAugment);
      } catch (e) {
        throw new UsageError(`--split-${(e as Error).message}`);
      }
      let partition: Partition;
      try {
        partition = parsePartition(o.partition);
      } catch (e) {
        throw new UsageError(`--${(e as Error).message}`);
      }
      const extraFedAvg = variants.filter((v) => (SPLIT_VARIANTS[v].epochs ?? o.epochs) !== o.epochs).length; // (a variant equal to the default's run is not run again: the bar may end early)
      const bar = progress((3 + (sameRecipe({ augment, splitAugment, cutDropout: o.cutDropout, splitCutDropout: o.splitCutDropout }) ? 0 : 1) + ((o.headShare === 1 && o.headShareEvery === 1) || !o.headsAveraged ? 0 : 1) + schedulers.length + variants.length + extraFedAvg) * o.rounds);
      const r = await runSplitExperiment({
        ...d,
        rounds: o.rounds,
        clients: o.clients,
        miners: o.miners,
        schedulers: schedulers as SchedulerName[],
        samplesPerRound: o.samples,
        batchSize: o.B,
        lr: o.lr,
        hidden,
        cut: o.cut,
        epochs: o.epochs,
        headInit: o.headInit,
        headLrScale: o.headLrScale,
        headDecay: o.headDecay,
        headShare: o.headShare,
        headShareEvery: o.headShareEvery,
        headClip: o.headClip,
        headNoise: o.headNoise,
        dpDelta: o.dpDelta,
        variants,
        augment,
        cutDropout: o.cutDropout,
        splitAugment,
        splitCutDropout: o.splitCutDropout,
        headsAveraged: o.headsAveraged,
        budget: budget as [number, number],
        evalEvery: o.evalEvery,
        partition,
        dataset: o.dataset,
        seed: o.seed,
        out: o.out,
        onRound: (run, round, acc) => bar(`${run}: round ${round} of ${o.rounds}${acc === null ? '' : `, accuracy ${acc.toFixed(4)}`}`),
      });
      bar.done();
      const { curves: _c, ...summary } = r;
      if (o.json) printJson(summary);
      else {
        print(`${r.dataset} (${r.partition}), ${r.clients} clients, ${r.miners} miners, ${r.rounds} rounds, MLP ${r.layers.join('-')} cut after layer ${r.cut} (head ${r.headParams}, body ${r.bodyParams} parameters):`);
        print(`  accuracy: split ${r.accuracySplit.toFixed(4)} (heads averaged by eq. 4: ${r.accuracySplitHeadsAveraged?.toFixed(4) ?? 'not run'}), federated ${r.accuracyFederated.toFixed(4)} (split ${r.gapPoints} points lower), centralized ${r.accuracyCentralized.toFixed(4)}`);
        print(`  regularisers: split ${r.splitRecipe.augment}, cut dropout ${r.splitRecipe.cutDropout}; federated ${r.federatedRecipe.augment}, cut dropout ${r.federatedRecipe.cutDropout}${r.accuracyFederatedSplitRecipe === null ? '' : `; FedAvg with split's ${r.accuracyFederatedSplitRecipe.toFixed(4)} (split ${r.gapPointsSplitRecipe} points lower)`}`);
        const b = r.bytesPerClientRound;
        const eps = (p: typeof r.privacy) => (p ? `, (ε, δ) = (${p.epsilon.toPrecision(3)}, ${p.delta}) over ${p.releases} head shares` : ', heads private');
        print(`  default heads: init ${r.head.headInit}, head η ×${r.head.headLrScale}, decay ${r.head.headDecay}, eq. (4) share ${r.head.headShare} every ${r.head.headShareEvery} rounds${eps(r.privacy)}; train accuracy split ${r.trainAccuracy.split.toFixed(4)}, federated ${r.trainAccuracy.federated.toFixed(4)}`);
        print(`  bytes per client per round: split ${b.split.up} up / ${b.split.down} down (heads averaged: ${b.splitHeadsAveraged ? `${b.splitHeadsAveraged.up} / ${b.splitHeadsAveraged.down}` : 'not run'}), federated ${b.federated.up} up / ${b.federated.down} down`);
        for (const [n, v] of Object.entries(r.variants)) print(`  variant ${n.padEnd(20)} accuracy ${v.accuracy.toFixed(4)} (train ${v.trainAccuracy.toFixed(4)}; FedAvg ${v.accuracyFederated.toFixed(4)}, ${v.gapPoints} points), ${v.bytes.up} B up / ${v.bytes.down} B down per round${eps(v.privacy)}`);
        for (const [n, s] of Object.entries(r.schedulers)) print(`  ${n.padEnd(14)} with energy budgets: accuracy ${s.finalAccuracy.toFixed(4)}, test loss ${s.finalTestLoss.toFixed(4)}, ${s.clientsAtEnd} clients left, ${s.clientRounds} client-rounds`);
        print(`  ${r.seconds} s; wrote ${r.files.join(', ')}`);
      }
    });
}
