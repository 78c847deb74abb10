import { parentPort, workerData } from 'node:worker_threads';
import { type MlDsa, NativeMlDsa, NobleMlDsa, defaultMlDsa } from './mldsa.ts';
import { DecapsulationKeys, type OpenJob, openSealedUpdate } from './open-sealed.ts';

const { params, implementation } = workerData as { params: 'ML-DSA-44'; implementation: 'native' | 'noble' | 'auto' };
const mldsa: MlDsa = implementation === 'native' ? new NativeMlDsa(params) : implementation === 'noble' ? new NobleMlDsa(params) : defaultMlDsa(params);

const kemKeys = new DecapsulationKeys();

parentPort!.on('message', (msg: { id: number; jobs?: { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array; context: string }[]; open?: OpenJob }) => {
  if (msg.open) {
    try {
      const opened = openSealedUpdate(msg.open, kemKeys, mldsa);
      // the envelope's buffer goes back (the event loop reuses it for the next frame)
      parentPort!.postMessage({ id: msg.id, opened }, [opened.buffer]);
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
