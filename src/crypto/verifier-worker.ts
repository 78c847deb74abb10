import { parentPort, workerData } from 'node:worker_threads';
import { type MlDsa, NativeMlDsa, NobleMlDsa, defaultMlDsa } from './mldsa.ts';
import { DecapsulationKeys, type OpenJob, openSealedUpdate } from './open-sealed.ts';

const { params, implementation } = workerData as { params: 'ML-DSA-44'; implementation: 'native' | 'noble' | 'auto' };
const mldsa: MlDsa = implementation === 'native' ? new NativeMlDsa(params) : implementation === 'noble' ? new NobleMlDsa(params) : defaultMlDsa(params);

const kemKeys = new DecapsulationKeys();

parentPort!.on('message', (msg: { id: number; jobs?: { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array; context: string }[]; opens?: OpenJob[] }) => {
  if (msg.opens) {
    try {
      const opened = msg.opens.map((j) => openSealedUpdate(j, kemKeys, mldsa));
      // the envelopes' buffers go back (the event loop reuses them for the next frames)
      parentPort!.postMessage({ id: msg.id, opened }, opened.map((o) => o.buffer));
    } catch (e) {
      parentPort!.postMessage({ id: msg.id, error: (e as Error).message });
    }
    return;
  }
  try {
    const results = msg.jobs!.map((j) => mldsa.verify(j.publicKey, j.message, j.signature, j.context));
    parentPort!.postMessage({ id: msg.id, results });
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
