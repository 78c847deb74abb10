/**
 * What a client does with its training besides training honestly: the seam through which the
 * experiments (src/experiments/attacks.ts) make clients attack, without the product knowing
 * any attack. Asked once per local round, so a behaviour may change during a run (the
 * experiments' rotating attackers).
 */
import type { Rng } from '../core/random.ts';

export interface RoundBehaviour {
  /** 'none' for honest training; recorded with each upload and shown in /status (`attack`). */
  readonly label: string;
  /** The labels the client trains on (a data attack changes them; a new array if so). */
  trainingLabels(y: Uint8Array, classes: number): Uint8Array;
  /** The update the client signs, from the one it trained (`rng`: seeded per client and round). */
  update(delta: Float32Array, rng: Rng): Float32Array;
  /** The share of the N newest samples the client trains on (default 1): a client with less data
   * per round, which honestly claims the smaller sample count (the experiments' sample-count
   * quality, issue 11). */
  readonly sampleShare?: number;
}

export interface ClientBehaviour {
  /** The behaviour of the local round about to start. */
  forRound(): RoundBehaviour;
}

export const honestRound: RoundBehaviour = {
  label: 'none',
  trainingLabels: (y) => y,
  update: (delta) => delta,
};

export const honestTraining: ClientBehaviour = { forRound: () => honestRound };
