/**
 * The centralized reference curve: one model trained on all the training data with the same
 * local-training code the clients run (`bfl-node experiment centralized`).
 */
import { loadDataset } from '../learn/data.ts';
import { DEFAULT_MODEL, type ModelSpec, initParams } from '../learn/model.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { evaluate, trainLocal } from '../learn/train.ts';

export interface CentralizedOptions {
  dataset: string;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  model?: ModelSpec;
  threads?: number;
  onEpoch?: (e: EpochReport) => void;
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  testLoss: number;
  testAccuracy: number;
  seconds: number;
}

export interface CentralizedResult {
  dataset: string;
  testAccuracy: number;
  trainSamples: number;
  testSamples: number;
  samplesPerSecond: number;
  epochs: EpochReport[];
  hyperparameters: { epochs: number; batchSize: number; lr: number; seed: number; layers: number[] };
}

// B = 10 and η = 0.01 are the paper's client settings; the reference curve uses B = 10 and a
// larger rate so that 5 epochs are enough to see where the model saturates.
export const defaultCentralized: Omit<CentralizedOptions, 'onEpoch'> = { dataset: 'mnist', epochs: 5, batchSize: 10, lr: 0.05, seed: 1 };

export async function runCentralized(o: CentralizedOptions): Promise<CentralizedResult> {
  const { train, test } = loadDataset(o.dataset);
  const model = o.model ?? { ...DEFAULT_MODEL, layers: [train.dim, ...DEFAULT_MODEL.layers.slice(1, -1), train.classes] };
  const rt = await ModelRuntime.create(model, { threads: o.threads });
  try {
    let params = initParams(model, o.seed);
    const epochs: EpochReport[] = [];
    let trainSeconds = 0;
    for (let e = 1; e <= o.epochs; e++) {
      const t0 = performance.now();
      const r = await trainLocal(rt, params, train, { epochs: 1, batchSize: o.batchSize, lr: o.lr, seed: o.seed * 1000 + e });
      const seconds = (performance.now() - t0) / 1000;
      trainSeconds += seconds;
      params = r.params;
      const ev = await evaluate(rt, params, test);
      const rep = { epoch: e, trainLoss: r.loss, testLoss: ev.loss, testAccuracy: ev.accuracy, seconds };
      epochs.push(rep);
      o.onEpoch?.(rep);
    }
    return {
      dataset: o.dataset,
      testAccuracy: epochs[epochs.length - 1].testAccuracy,
      trainSamples: train.n,
      testSamples: test.n,
      samplesPerSecond: Math.round((train.n * o.epochs) / trainSeconds),
      epochs,
      hyperparameters: { epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, seed: o.seed, layers: model.layers },
    };
  } finally {
    await rt.close();
  }
}
