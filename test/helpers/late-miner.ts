/**
 * A miner that joins late (issue 13, item 2): a producer mines `blocks` blocks with real
 * aggregations (BFL-MEC, stateful) and prunes raw updates `pruneDepth` blocks deep as a miner
 * does; a new miner with an empty datadir then syncs from it through the real BlockSync,
 * ChainService and PeerStateSource (over an in-process stand-in for the transport), with real
 * chain stores and update pools.
 */
import { join } from 'node:path';
import { ChainAggregation, type UpdateSource } from '../../src/chain/aggregation.ts';
import { InThreadAggregationEngine, aggregatorOf } from '../../src/chain/aggregation-engine.ts';
import { ChainStore } from '../../src/chain/store.ts';
import { UpdatePool } from '../../src/chain/update-pool.ts';
import { type NetworkConfig, defaultAggregationConfig, rulesOf } from '../../src/config/network.ts';
import { toHex } from '../../src/core/bytes.ts';
import { aggregationTxOf } from '../../src/core/chain.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { Block, RecordTx } from '../../src/core/types.ts';
import { deltaToPayload } from '../../src/core/update.ts';
import { type ChainState, sortedPending } from '../../src/core/validation.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import type { PeerBook } from '../../src/net/peer-book.ts';
import type { Transport } from '../../src/net/transport.ts';
import { BlockSync, PeerStateSource } from '../../src/node/block-sync.ts';
import { ChainService } from '../../src/node/chain-service.ts';
import type { Verdicts } from '../../src/node/verdicts.ts';
import { systemClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { type TestNetwork, makeNetwork, mineBlock, signedRecord } from './network.ts';
import { tmpDir } from './tmp.ts';

export const PRUNE_DEPTH = 32;
const verifier = new InThreadVerifier();

interface Held {
  record: RecordTx;
  payload: Uint8Array;
}

/** Requests to `to` go to the handlers it serves (no wire: BlockSync and ChainService are real). */
class LoopTransport {
  static readonly handlers = new Map<string, Map<string, (req: Uint8Array, from: string) => Promise<Uint8Array>>>();
  readonly self: string;
  constructor(self: string) {
    this.self = self;
    LoopTransport.handlers.set(self, new Map());
  }
  async serve(protocol: string, handler: (req: Uint8Array, from: string) => Promise<Uint8Array>): Promise<void> {
    LoopTransport.handlers.get(this.self)!.set(protocol, handler);
  }
  async request(to: string, protocol: string, body: Uint8Array): Promise<Uint8Array> {
    const h = LoopTransport.handlers.get(to)?.get(protocol);
    if (!h) throw new Error(`${to} does not serve ${protocol}`);
    return h(body, this.self);
  }
  subscribe(): void {}
}

export interface Producer {
  net: TestNetwork;
  store: ChainStore;
  aggregation: ChainAggregation;
  /** The raw updates the producer still holds (pruned `PRUNE_DEPTH` deep). */
  held: Map<string, Held>;
  /** Its name on the (in-process) transport. */
  peer: string;
  /** Mine one block on the tip with one new update (aggregating at ϕ). */
  mine(opts?: { forge?: (b: Block) => Block }): Promise<Block>;
  close(): Promise<void>;
}

export async function producer(blocks: number): Promise<Producer> {
  const net = makeNetwork({ phi: 2, clients: 3 });
  net.params.rules = rulesOf(defaultAggregationConfig);
  const held = new Map<string, Held>();
  const source: UpdateSource = {
    get: async (_c, d) => {
      const h = held.get(toHex(d));
      return h && { payload: h.payload, sampleCount: h.record.sampleCount, baseModelHash: h.record.baseModelHash };
    },
  };
  const aggregation = new ChainAggregation({ engine: new InThreadAggregationEngine(aggregatorOf(defaultAggregationConfig)), updates: source });
  const now = () => net.params.genesisTime + 10_000_000;
  const store = await ChainStore.open({ datadir: await tmpDir('bfl-late-p-'), params: net.params, signatures: verifier, aggregation, now });
  let n = 0;
  const mine = async (opts: { forge?: (b: Block) => Block } = {}) => {
    const tip: ChainState = store.tip;
    n++;
    // client k's updates point one way with a little noise, so that BFL-MEC finds agreement
    const k = n % 3;
    const delta = Float32Array.from({ length: 8 }, (_, i) => 0.01 * Math.cos(i + k) + 0.001 * Math.sin(n * 7 + i));
    const payload = deltaToPayload(delta);
    const record = signedRecord(net, net.clients[k], net.miners[0].id, tip.modelHash, { digest: sha256(payload), createdAt: net.params.genesisTime + n });
    held.set(toHex(record.updateDigest), { record, payload });
    const pending = [...tip.pending, { clientId: record.clientId, updateDigest: record.updateDigest }];
    const agg = pending.length >= net.params.phi ? await aggregation.compute(store, tip, sortedPending(pending)) : undefined;
    const block = mineBlock(net, tip, net.miners[0], { records: [record], aggregation: agg, timestamp: tip.timestamp + 1000 });
    if (opts.forge) return opts.forge(block);
    await store.addBlock(block);
    // Miner.prune: the payloads of the aggregation `PRUNE_DEPTH` below the tip are dropped
    const buried = await store.blockAt(store.tip.height - PRUNE_DEPTH);
    const a = buried && store.tip.height - PRUNE_DEPTH > 0 ? aggregationTxOf(buried) : undefined;
    for (const e of a?.entries ?? []) held.delete(toHex(e.updateDigest));
    return block;
  };
  for (let i = 0; i < blocks; i++) await mine();
  const transport = new LoopTransport(`producer-${toHex(store.genesisHash).slice(0, 8)}`);
  const service = new ChainService({ networkId: net.params.networkId, timeoutMs: 5000 }, { store, transport: transport as unknown as Transport });
  await service.start();
  return { net, store, aggregation, held, peer: transport.self, mine, close: () => store.close() };
}

export interface LateMiner {
  dir: string;
  store: ChainStore;
  pool: UpdatePool;
  aggregation: ChainAggregation;
  sync: BlockSync;
  /** Sync from the producer (one BlockSync.syncWith). */
  catchUp(): Promise<void>;
  close(): Promise<void>;
}

/** A miner with an empty datadir that knows the producer as its one connected miner. */
export async function lateMiner(p: Producer): Promise<LateMiner> {
  const dir = await tmpDir('bfl-late-l-');
  const pool = await UpdatePool.open(join(dir, 'updates'));
  const peer = p.peer;
  // UpdateFetcher's part: the pool, else the producer (if it still holds the update), stored
  const updates: UpdateSource = {
    get: async (clientId, digest) => {
      const e = pool.get(clientId, digest);
      const local = e && (await pool.payload(clientId, digest));
      if (e && local) return { payload: local, sampleCount: e.sampleCount, baseModelHash: e.baseModelHash };
      const h = p.held.get(toHex(digest));
      if (!h) return undefined;
      await pool.add({ ...h.record, payloadBytes: h.payload.length, payload: h.payload }, Date.now());
      return { payload: h.payload, sampleCount: h.record.sampleCount, baseModelHash: h.record.baseModelHash };
    },
  };
  const transport = new LoopTransport(`late-${dir}`) as unknown as Transport;
  const peers = { connectedMiners: () => [{ peer, memberId: p.net.miners[0].id }], info: () => ({ memberId: p.net.miners[0].id, role: 'miner' }) } as unknown as PeerBook;
  const config = { networkId: p.net.params.networkId, p2p: { requestTimeoutMs: 5000 } } as NetworkConfig;
  const states = new PeerStateSource({ config }, { transport, peers, logger: silentLogger });
  const aggregation = new ChainAggregation({ engine: new InThreadAggregationEngine(aggregatorOf(defaultAggregationConfig)), updates, states });
  const store = await ChainStore.open({ datadir: join(dir, 'chain'), params: p.net.params, signatures: verifier, aggregation, assumeValidDepth: PRUNE_DEPTH, now: () => p.net.params.genesisTime + 10_000_000 });
  const verdicts = { refused: () => 'ignore' } as unknown as Verdicts;
  const sync = new BlockSync({ config, syncIntervalMs: 60_000 }, { store, transport, peers, verdicts, clock: systemClock, logger: silentLogger });
  return {
    dir,
    store,
    pool,
    aggregation,
    sync,
    catchUp: () => sync.syncWith(peer),
    close: async () => {
      await store.close();
      await pool.close();
    },
  };
}
