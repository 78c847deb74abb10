/**
 * The second Shapley reference of `experiment rewards --shapley retrain` (issue 11; docs/decisions.md,
 * "Rewards and Shapley values"): the value of a coalition is the test accuracy of the model that the
 * coalition alone would have trained, FedAvg from the genesis model over the run's number of
 * aggregations. This is the ground truth of the contribution-evaluation literature (the
 * "retraining" Shapley value that MR, GTG-Shapley and the VLDB 2024 benchmark's estimators
 * approximate); the per-aggregation value (one aggregation step from the previous global model,
 * per coalition of that aggregation's updates) is itself one of those estimators (MR's per-round
 * reconstruction). Trained here in process, without the network: 2^n coalitions × rounds × |S|
 * local rounds of the clients' own data streams, seeded as the simulator seeds them.
 */
import type { LearningConfig } from '../config/network.ts';
import { type TrainTest, subset } from '../learn/data.ts';
import { initParams } from '../learn/model.ts';
import { partition } from '../learn/partition.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { DataStream } from '../learn/stream.ts';
import { evaluate, trainLocal } from '../learn/train.ts';

/** What a client's data look like in the experiment: labels changed (noisy labels) and the share
 * of each batch of N it trains on (sample counts). */
export interface ClientData {
  labels?: (y: Uint8Array, classes: number) => Uint8Array;
  share?: number;
}

export interface RetrainOptions {
  data: TrainTest;
  clients: number;
  /** The run's learning settings (partition, partitionSeed, N, E, B, lr, mu, heldOut, layers, modelSeed). */
  learning: LearningConfig;
  /** FedAvg rounds per coalition: the run's number of aggregations. */
  rounds: number;
  clientData: (client: number) => ClientData;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Test accuracy and loss of every coalition's model (index = bitmask of clients), trained by
 * FedAvg (weights: the members' sample counts) for `rounds` rounds from the genesis model; the
 * empty coalition is the genesis model. Each client trains in round t on the t-th batch of N of
 * its stream (the simulator's seed and order), so the coalitions differ only in who takes part.
 */
export async function coalitionValues(o: RetrainOptions): Promise<{ accuracy: Float64Array; loss: Float64Array }> {
  const n = o.clients;
  if (n > 12) throw new RangeError('retrained Shapley values need at most 12 clients (2^n coalitions)');
  const L = o.learning;
  const spec = { kind: 'mlp' as const, layers: L.layers };
  const runtime = await ModelRuntime.create(spec, { threads: 1 });
  try {
    const parts = partition(o.data.train.y, n, L.partition, L.partitionSeed);
    // the same batches as in the simulator: the client's stream without its held-out tail
    const batches = parts.map((samples, c) => {
      const held = Math.min(L.heldOut, Math.floor(samples.length / 5));
      const stream = new DataStream(samples.slice(0, samples.length - held), 0, { rate: 1000, seed: L.partitionSeed * 1000 + c });
      const cd = o.clientData(c);
      return Array.from({ length: o.rounds }, (_, t) => {
        const taken = stream.takeNewest(L.N, (t + 1) * L.N);
        const kept = cd.share === undefined ? taken : taken.slice(taken.length - Math.max(1, Math.round(cd.share * taken.length)));
        const ds = subset(o.data.train, kept);
        if (cd.labels) ds.y = cd.labels(ds.y, ds.classes);
        return ds;
      });
    });
    const initial = initParams(spec, L.modelSeed);
    const train = (model: Float32Array, c: number, t: number) => trainLocal(runtime, model, batches[c][t], { epochs: L.E, batchSize: L.B, lr: L.lr, mu: L.mu, seed: c * 7919 + t });
    // round 0 starts from the genesis model in every coalition: train each client once
    const first = [];
    for (let c = 0; c < n; c++) first.push(await train(initial, c, 0));
    const accuracy = new Float64Array(1 << n);
    const loss = new Float64Array(1 << n);
    const total = 1 << n;
    for (let mask = 0; mask < total; mask++) {
      const members = Array.from({ length: n }, (_, c) => c).filter((c) => mask & (1 << c));
      let model = initial;
      for (let t = 0; t < o.rounds && members.length; t++) {
        const ups = [];
        for (const c of members) ups.push(t === 0 ? first[c] : await train(model, c, t));
        const all = ups.reduce((s, u) => s + u.samples, 0);
        const sum = new Float64Array(model.length);
        for (const u of ups) for (let k = 0; k < sum.length; k++) sum[k] += (u.samples / all) * u.delta[k];
        model = Float32Array.from(model, (x, k) => x + sum[k]);
      }
      const ev = await evaluate(runtime, model, o.data.test);
      accuracy[mask] = ev.accuracy;
      loss[mask] = ev.loss;
      o.onProgress?.(mask + 1, total);
    }
    return { accuracy, loss };
  } finally {
    await runtime.close();
  }
}
