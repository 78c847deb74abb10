/** Worker side of HighsWorker (lp.ts): one HiGHS instance, models in as typed arrays. */
import { parentPort } from 'node:worker_threads';
import { type LpModel, type SolveOptions, loadHighs, solveWith } from './lp.ts';

const highs = await loadHighs();

parentPort!.on('message', (msg: { id: number; model: LpModel; options: SolveOptions }) => {
  try {
    const solution = solveWith(highs, msg.model, msg.options);
    parentPort!.postMessage({ id: msg.id, solution }, [solution.x.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
