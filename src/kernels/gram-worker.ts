/**
 * A worker of ThreadedGramKernel (gram.ts): waits for a new wave generation, claims chunks one
 * at a time from the wave's counter and computes each into its own partial matrix.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CTRL, NEXT_SLOTS, gramModule, instantiate } from './gram.ts';

const { memory, ctrl } = workerData as { memory: WebAssembly.Memory; ctrl: Int32Array };
const ex = instantiate(gramModule()!, memory);
parentPort!.postMessage('ready');

let seen = 0;
for (;;) {
  Atomics.wait(ctrl, CTRL.gen, seen);
  const gen = Atomics.load(ctrl, CTRL.gen);
  if (gen === seen) continue;
  seen = gen;
  if (Atomics.load(ctrl, CTRL.stop)) break;
  const kind = Atomics.load(ctrl, CTRL.kind);
  const n = Atomics.load(ctrl, CTRL.n);
  const dim = Atomics.load(ctrl, CTRL.dim);
  const c0 = Atomics.load(ctrl, CTRL.c0);
  const c1 = Atomics.load(ctrl, CTRL.c1);
  const vecs = Atomics.load(ctrl, CTRL.vecs) >>> 0;
  const parts = Atomics.load(ctrl, CTRL.parts) >>> 0;
  // The main thread writes a wave's words before its generation: if the generation is still
  // ours, so are the words. Otherwise a newer wave is up: go round and take that one.
  if (Atomics.load(ctrl, CTRL.gen) !== gen) continue;
  const next = CTRL.next + (gen % NEXT_SLOTS);
  const matrixBytes = n * n * 8;
  for (let c = Atomics.add(ctrl, next, 1); c < c1; c = Atomics.add(ctrl, next, 1)) {
    ex.chunk(kind, vecs, n, dim, c, parts + (c - c0) * matrixBytes, 0);
    Atomics.add(ctrl, CTRL.done, 1);
    Atomics.notify(ctrl, CTRL.done);
  }
}
