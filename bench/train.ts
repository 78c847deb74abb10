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
  /** ms: wall time (median); cpuMs: the process's CPU time (median: comparable under load). */
  localUpdate: { epochs: number; batchSize: number; samples: number; ms: number; cpuMs: number };
  /** The same local update with one onnxruntime call per step (the reference engine), measured
   * alternately with the loop engine in this run; ratio = loop / step CPU time. */
  localUpdateStepwise: { ms: number; cpuMs: number; cpuRatioLoopToStep: number };
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
    const times = { loop: [] as number[], step: [] as number[] };
    const cpu = { loop: [] as number[], step: [] as number[] };
    for (let r = 0; r < 15; r++) {
      for (const engine of ['loop', 'step'] as const) {
        const c = process.cpuUsage();
        const t = performance.now();
        await trainLocal(rt, global, n100, { epochs: 5, batchSize: 10, lr: 0.01, seed: r, engine });
        if (r === 0) continue; // warm-up
        times[engine].push(performance.now() - t);
        const u = process.cpuUsage(c);
        cpu[engine].push((u.user + u.system) / 1000);
      }
    }
    const ms = (v: number[]) => Number(median(v).toFixed(2));
    return {
      model: DEFAULT_MODEL.layers,
      threads: opts.threads ?? 1,
      throughput,
      localUpdate: { epochs: 5, batchSize: 10, samples: 100, ms: ms(times.loop), cpuMs: ms(cpu.loop) },
      localUpdateStepwise: { ms: ms(times.step), cpuMs: ms(cpu.step), cpuRatioLoopToStep: Number((median(cpu.loop) / median(cpu.step)).toFixed(3)) },
    };
  } finally {
    await rt.close();
  }
}
