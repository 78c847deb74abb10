/**
 * Training speed (`bfl-node bench train`): train-step throughput (forward, backward, SGD
 * update) at several batch sizes, and the time of one whole local update as a client runs it
 * (E = 5, B = 10, N = 100: 50 steps), on the embedded MNIST with the default MLP.
 */
import { loadEmbeddedMnist, subset } from '../src/learn/data.ts';
import { DEFAULT_MODEL, initParams } from '../src/learn/model.ts';
import { ModelRuntime } from '../src/learn/runtime.ts';
import { trainLocal } from '../src/learn/train.ts';
import { median } from './stats.ts';

export interface TrainBench {
  model: number[];
  threads: number;
  throughput: { batchSize: number; samplesPerSecond: number; msPerStep: number }[];
  localUpdate: { epochs: number; batchSize: number; samples: number; ms: number };
}

export async function benchTrain(opts: { batchSizes?: number[]; seconds?: number; threads?: number } = {}): Promise<TrainBench> {
  const batchSizes = opts.batchSizes ?? [1, 10, 32, 64, 128];
  const seconds = opts.seconds ?? 1;
  const { train } = loadEmbeddedMnist();
  const rt = await ModelRuntime.create(DEFAULT_MODEL, { threads: opts.threads });
  try {
    const global = initParams(DEFAULT_MODEL, 1);
    const throughput = [];
    for (const b of batchSizes) {
      const data = subset(train, Array.from({ length: Math.max(b * 20, 200) }, (_, i) => i));
      await trainLocal(rt, global, data, { epochs: 1, batchSize: b, lr: 0.01, seed: 1 }); // warm-up
      let samples = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) samples += (await trainLocal(rt, global, data, { epochs: 1, batchSize: b, lr: 0.01, seed: 1 })).samples;
      const ms = performance.now() - t0;
      throughput.push({ batchSize: b, samplesPerSecond: Math.round((samples / ms) * 1000), msPerStep: Number(((ms / samples) * b).toFixed(4)) });
    }
    const n100 = subset(train, Array.from({ length: 100 }, (_, i) => i));
    const times: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t = performance.now();
      await trainLocal(rt, global, n100, { epochs: 5, batchSize: 10, lr: 0.01, seed: r });
      times.push(performance.now() - t);
    }
    return { model: DEFAULT_MODEL.layers, threads: opts.threads ?? 1, throughput, localUpdate: { epochs: 5, batchSize: 10, samples: 100, ms: Number(median(times.slice(1)).toFixed(2)) } };
  } finally {
    await rt.close();
  }
}
