/**
 * Client–miner association in the simulator (issue 17): the radio twin of src/association laid
 * over the mobility model. Every `everyMs` of virtual time a coordinator takes the clients'
 * positions, draws Rayleigh fading on every (client, miner, channel), and lets the scheduler
 * compute the joint one-to-one (miner, channel) assignment of the DT paper's problem (19); each
 * client's MinerSelector puts its assigned miner first (while in coverage), the others after by
 * round-trip time. A coordinator is the paper's setting (the digital twin schedules centrally);
 * the daemon's per-client approximation is src/node/association-selector.ts.
 */
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';
import { DEFAULT_POLICY, d3qnScheduler } from '../association/d3qn.ts';
import { type Scheduler, type SchedulerName, heuristicScheduler, nearestScheduler } from '../association/schedulers.ts';
import { type TwinParams, type TwinState, checkOneToOne, drawGains, roundCost, twinParams } from '../association/twin.ts';
import type { MinerSelector } from '../node/miner-selector.ts';
import { nearestByRtt } from '../node/miner-selector.ts';
import type { Clock } from '../util/clock.ts';
import type { Mobility } from './mobility.ts';

export interface SimAssociationOptions {
  policy: SchedulerName;
  /**
   * 'coordinator' (default): the joint assignment in the twin, as in the paper. 'per-client':
   * the daemon's approximation instead (src/node/association-selector.ts): each client runs the
   * policy on its own measured RTTs and the miners' announced loads, over the simulated network.
   */
  mode?: 'coordinator' | 'per-client';
  /** D3QN policy stem; default the committed one (4 miners × 10 channels). */
  policyFile?: string;
  /** Virtual ms between assignments: the clients' RTT measurement interval (2 s), so that a
   * client's ranking changes as often as it would in the daemon. */
  everyMs?: number;
  /** Twin settings besides N, M and the area (which come from the simulation); default Table I. */
  twin?: Partial<TwinParams>;
}

/** What the coordinator's rounds cost, and what the BFL-MEC paper's rule (nearest miner, random
 * free channel) would have cost on the same rounds. */
export interface SimAssociationReport {
  policy: SchedulerName;
  mode: 'coordinator' | 'per-client';
  /** Uploads a client sent to the miner the scheduler had assigned it, and all uploads. */
  uploadsToAssigned: number;
  uploads: number;
  /** Uploads per miner (by miner index). */
  uploadsPerMiner: number[];
  /** The coordinator's twin rounds (mode 'coordinator' only). */
  twin?: { rounds: number; meanCost: number; meanTimeS: number; meanEnergyJ: number; nearestMeanCost: number };
}

/** Counts uploads against the miner each client was assigned or chose (both modes). */
export class UploadTally {
  private readonly perMiner: number[];
  private uploads = 0;
  private toAssigned = 0;

  constructor(miners: number) {
    this.perMiner = new Array<number>(miners).fill(0);
  }

  add(miner: number, assigned: number): void {
    this.uploads++;
    this.perMiner[miner]++;
    if (miner === assigned) this.toAssigned++;
  }

  report(policy: SchedulerName, mode: 'coordinator' | 'per-client', twin?: SimAssociationReport['twin']): SimAssociationReport {
    return { policy, mode, uploadsToAssigned: this.toAssigned, uploads: this.uploads, uploadsPerMiner: [...this.perMiner], ...(twin ? { twin } : {}) };
  }
}

export class AssociationCoordinator {
  private readonly o: Required<Pick<SimAssociationOptions, 'policy' | 'everyMs'>>;
  private readonly p: TwinParams;
  private readonly mobility: Mobility;
  private readonly clock: Clock;
  private readonly scheduler: Scheduler;
  private readonly reference: Scheduler;
  private readonly rng: Rng;
  private readonly serverPos: Float64Array;
  private readonly usedEnergyJ: Float64Array;
  private usedTimeS = 0;
  private prevServerLoad: Float64Array;
  private prevChannelLoad: Float64Array;
  private assigned: Int32Array | null = null;
  private closed = false;
  private readonly sums = { rounds: 0, cost: 0, time: 0, energy: 0, nearest: 0 };
  readonly tally: UploadTally;

  private constructor(o: SimAssociationOptions, p: TwinParams, mobility: Mobility, clock: Clock, scheduler: Scheduler, seed: number) {
    this.o = { policy: o.policy, everyMs: o.everyMs ?? 2000 };
    this.p = p;
    this.mobility = mobility;
    this.clock = clock;
    this.scheduler = scheduler;
    this.reference = nearestScheduler(seed + 2);
    this.rng = new Rng(seed);
    this.serverPos = Float64Array.from(mobility.minerPos.flat());
    this.usedEnergyJ = new Float64Array(p.clients);
    this.prevServerLoad = new Float64Array(p.servers);
    this.prevChannelLoad = new Float64Array(p.channels);
    this.tally = new UploadTally(p.servers);
  }

  static async create(o: SimAssociationOptions, mobility: Mobility | undefined, miners: number, clients: number, clock: Clock, seed: number): Promise<AssociationCoordinator> {
    if (!mobility) throw new BflError(ErrorCode.BAD_CONFIG, 'association in the simulator needs the mobility model (the twin takes the clients\' positions from it); give mobility options');
    const p = twinParams({ ...o.twin, clients, servers: miners, areaM: mobility.o.areaM });
    const scheduler = o.policy === 'd3qn' ? await d3qnScheduler(o.policyFile ?? DEFAULT_POLICY) : heuristicScheduler(o.policy, seed + 1);
    return new AssociationCoordinator(o, p, mobility, clock, scheduler, seed);
  }

  /** The twin's round now: positions from the mobility model, fresh fading. */
  private state(): TwinState {
    const N = this.p.clients;
    const clientPos = new Float64Array(2 * N);
    for (let c = 0; c < N; c++) clientPos.set(this.mobility.position(c, this.clock.now()), 2 * c);
    return {
      params: this.p,
      clientPos,
      serverPos: this.serverPos,
      gain: drawGains(this.p, clientPos, this.serverPos, this.rng),
      samples: new Float64Array(N).fill(this.p.samplesPerRound),
      usedTimeS: this.usedTimeS,
      usedEnergyJ: Float64Array.from(this.usedEnergyJ),
      prevServerLoad: this.prevServerLoad,
      prevChannelLoad: this.prevChannelLoad,
    };
  }

  /** One assignment round (also the loop's body). */
  async assign(): Promise<void> {
    const s = this.state();
    const a = await this.scheduler.assign(s);
    checkOneToOne(this.p, a);
    const c = roundCost(s, a);
    this.usedTimeS += c.timeS;
    this.prevServerLoad = new Float64Array(this.p.servers);
    this.prevChannelLoad = new Float64Array(this.p.channels);
    for (let n = 0; n < this.p.clients; n++) {
      this.usedEnergyJ[n] += c.clientEnergyJ[n];
      this.prevServerLoad[a.server[n]]++;
      this.prevChannelLoad[a.channel[n]]++;
    }
    this.assigned = a.server;
    this.sums.rounds++;
    this.sums.cost += c.cost;
    this.sums.time += c.timeS;
    this.sums.energy += c.energyJ;
    this.sums.nearest += roundCost(s, (await this.reference.assign(s)) as typeof a).cost;
  }

  /** Assign now and then every `everyMs` until closed (spawned on the simulation's clock). */
  start(): void {
    this.clock.spawn(async () => {
      while (!this.closed) {
        await this.assign();
        await this.clock.sleep(this.o.everyMs);
      }
    });
  }

  /** The miner assigned to client `c` at the last round (its index), or −1 before the first. */
  assignedTo(c: number): number {
    return this.assigned ? this.assigned[c] : -1;
  }

  /** Client `c`'s selector: its assigned miner first while reachable, then by round-trip time. */
  selectorFor(c: number): MinerSelector {
    return {
      name: `association-${this.o.policy}`,
      rank: (observed, ctx) => {
        const byRtt = nearestByRtt.rank(observed, ctx);
        const m = this.assignedTo(c);
        const first = m >= 0 && observed[m]?.rttMs !== null ? observed[m].miner : undefined;
        return first ? [first, ...byRtt.filter((x) => x !== first)] : byRtt;
      },
    };
  }

  /** Count an upload of client `c` to miner index `m` (for the report). */
  uploaded(c: number, m: number): void {
    this.tally.add(m, this.assignedTo(c));
  }

  report(): SimAssociationReport {
    const n = Math.max(1, this.sums.rounds);
    return this.tally.report(this.o.policy, 'coordinator', { rounds: this.sums.rounds, meanCost: this.sums.cost / n, meanTimeS: this.sums.time / n, meanEnergyJ: this.sums.energy / n, nearestMeanCost: this.sums.nearest / n });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.scheduler.close?.();
  }
}
