/**
 * Where clients are, for coverage: miners stand still at evenly spaced points of a square
 * area, each covering a disc of `radius`; clients move by the random waypoint model (pick a
 * point, walk there at a random speed, pause, repeat), seeded. A client reaches a miner while it
 * is inside that miner's disc: walking out of every disc is how clients go offline.
 */
import { Rng } from '../core/random.ts';

export interface MobilityOptions {
  areaM: number; // side of the square area, metres
  radiusM: number; // coverage radius of a miner
  speedMps: [number, number]; // walking speed range
  pauseMs: [number, number];
  seed: number;
}

export const defaultMobility: MobilityOptions = { areaM: 1000, radiusM: 450, speedMps: [1, 3], pauseMs: [0, 30_000], seed: 1 };

interface Leg {
  t0: number; // start of the leg (walking), ms
  t1: number; // arrival
  t2: number; // end of the pause
  from: [number, number];
  to: [number, number];
}

export class Mobility {
  readonly o: MobilityOptions;
  readonly minerPos: [number, number][];
  private readonly legs: Leg[][] = [];
  private readonly rngs: Rng[] = [];

  constructor(miners: number, clients: number, o: MobilityOptions) {
    this.o = o;
    // miners on a grid inside the area
    const side = Math.ceil(Math.sqrt(miners));
    this.minerPos = Array.from({ length: miners }, (_, i) => [((i % side) + 0.5) * (o.areaM / side), (Math.floor(i / side) + 0.5) * (o.areaM / Math.ceil(miners / side))] as [number, number]);
    for (let c = 0; c < clients; c++) {
      const rng = new Rng(o.seed * 100_003 + c);
      this.rngs.push(rng);
      const start: [number, number] = [rng.float() * o.areaM, rng.float() * o.areaM];
      this.legs.push([{ t0: 0, t1: 0, t2: 0, from: start, to: start }]);
    }
  }

  position(client: number, t: number): [number, number] {
    const legs = this.legs[client];
    const rng = this.rngs[client];
    while (legs[legs.length - 1].t2 < t) {
      const prev = legs[legs.length - 1];
      const to: [number, number] = [rng.float() * this.o.areaM, rng.float() * this.o.areaM];
      const speed = this.o.speedMps[0] + rng.float() * (this.o.speedMps[1] - this.o.speedMps[0]);
      const dist = Math.hypot(to[0] - prev.to[0], to[1] - prev.to[1]);
      const t1 = prev.t2 + (dist / speed) * 1000;
      legs.push({ t0: prev.t2, t1, t2: t1 + this.o.pauseMs[0] + rng.float() * (this.o.pauseMs[1] - this.o.pauseMs[0]), from: prev.to, to });
    }
    // binary search would be faster; clients ask about the present, which is near the end
    for (let i = legs.length - 1; i >= 0; i--) {
      const l = legs[i];
      if (l.t0 <= t) {
        if (t >= l.t1) return l.to;
        const f = (t - l.t0) / (l.t1 - l.t0);
        return [l.from[0] + f * (l.to[0] - l.from[0]), l.from[1] + f * (l.to[1] - l.from[1])];
      }
    }
    return legs[0].from;
  }

  inRange(client: number, miner: number, t: number): boolean {
    const p = this.position(client, t);
    const m = this.minerPos[miner];
    return Math.hypot(p[0] - m[0], p[1] - m[1]) <= this.o.radiusM;
  }

  distance(client: number, miner: number, t: number): number {
    const p = this.position(client, t);
    const m = this.minerPos[miner];
    return Math.hypot(p[0] - m[0], p[1] - m[1]);
  }
}
