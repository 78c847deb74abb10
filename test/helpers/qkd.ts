import type { Topology } from '../../src/qkd/model.ts';

/** A 5-node mesh (a ring with a chord) where requests have several routes, small enough that
 * every solve takes milliseconds. */
export const mesh: Topology = {
  name: 'mesh',
  nodes: ['A', 'B', 'C', 'D', 'E'],
  links: [
    { a: 'A', b: 'B', km: 200 },
    { a: 'B', b: 'C', km: 150 },
    { a: 'C', b: 'D', km: 300 },
    { a: 'D', b: 'E', km: 120 },
    { a: 'E', b: 'A', km: 250 },
    { a: 'B', b: 'D', km: 330 },
  ],
};
