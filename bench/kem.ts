/**
 * ML-KEM-768 and sealed updates (src/crypto/mlkem.ts, seal.ts), native OpenSSL vs noble: median
 * times of key generation, encapsulation, decapsulation, and sealing / opening one update of the
 * default model (159,010 float32 = 636,040 bytes). X25519 (native) is measured beside them as
 * the classical KEM a hybrid would add (docs/decisions.md, "Post-quantum confidentiality").
 * `bfl-node bench kem [--json]`.
 */
import * as nodeCrypto from 'node:crypto';
import { type MlKem, KEM_SIZES, NativeMlKem, NobleMlKem } from '../src/crypto/mlkem.ts';
import { SEAL_OVERHEAD, SealContext, openWith, seal } from '../src/crypto/seal.ts';
import { DEFAULT_MLP_PARAMS } from './aggregate.ts';
import { timeMs } from './stats.ts';

export interface KemRow {
  scheme: string;
  implementation: 'native' | 'noble';
  keygenMs: number;
  encapsulateMs: number;
  decapsulateMs: number;
  /** Seal / open one update of `updateBytes`; null for the classical reference row. */
  sealUpdateMs: number | null;
  openUpdateMs: number | null;
  publicKeyBytes: number;
  ciphertextBytes: number;
  updateBytes: number;
  runs: number;
}

export interface KemBenchOptions {
  runs?: number;
  /** Parameters per update (float32); default the default MLP. */
  params?: number;
}

function mlkemRow(kem: MlKem, runs: number, update: Uint8Array): KemRow {
  const seed = nodeCrypto.randomBytes(KEM_SIZES.seed);
  const dk = kem.decapsulationKey(seed);
  const e = kem.encapsulate(dk.publicKey);
  const claim = nodeCrypto.randomBytes(120); // the encoded claim's size: associated data
  const sealed = seal({ context: SealContext.upload, recipientPublicKey: dk.publicKey, plaintext: update, associatedData: claim }, kem);
  if (Buffer.compare(openWith(dk, SealContext.upload, sealed, claim), update) !== 0) throw new Error(`${kem.name}: a sealed update does not open`);
  // Weight: noble is ~10x slower per KEM operation; fewer runs keep the bench short.
  const r = kem.name === 'native' ? runs : Math.max(3, Math.round(runs / 3));
  return {
    scheme: kem.params,
    implementation: kem.name,
    // A fresh key pair from a fresh seed, as a miner does at keygen or rotation.
    keygenMs: timeMs(() => kem.decapsulationKey(nodeCrypto.randomBytes(KEM_SIZES.seed)), r, 1),
    encapsulateMs: timeMs(() => kem.encapsulate(dk.publicKey), r),
    decapsulateMs: timeMs(() => dk.decapsulate(e.ciphertext), r),
    // 10 unmeasured calls first: the first 636 KB allocations and the GC's heap growth would
    // otherwise land in whichever row is measured first.
    sealUpdateMs: timeMs(() => seal({ context: SealContext.upload, recipientPublicKey: dk.publicKey, plaintext: update, associatedData: claim }, kem), r, 10),
    openUpdateMs: timeMs(() => openWith(dk, SealContext.upload, sealed, claim), r, 10),
    publicKeyBytes: dk.publicKey.length,
    ciphertextBytes: SEAL_OVERHEAD,
    updateBytes: update.length,
    runs: r,
  };
}

function x25519Row(runs: number, updateBytes: number): KemRow {
  const recipient = nodeCrypto.generateKeyPairSync('x25519');
  const ephemeral = nodeCrypto.generateKeyPairSync('x25519');
  return {
    scheme: 'X25519',
    implementation: 'native',
    keygenMs: timeMs(() => nodeCrypto.generateKeyPairSync('x25519'), runs),
    // DHKEM(X25519) encapsulation = ephemeral key pair + one DH; decapsulation = one DH.
    encapsulateMs: timeMs(() => {
      const eph = nodeCrypto.generateKeyPairSync('x25519');
      nodeCrypto.diffieHellman({ privateKey: eph.privateKey, publicKey: recipient.publicKey });
    }, runs),
    decapsulateMs: timeMs(() => nodeCrypto.diffieHellman({ privateKey: recipient.privateKey, publicKey: ephemeral.publicKey }), runs),
    sealUpdateMs: null,
    openUpdateMs: null,
    publicKeyBytes: 32,
    ciphertextBytes: 32,
    updateBytes,
    runs,
  };
}

export function benchKem(opts: KemBenchOptions = {}): KemRow[] {
  const runs = opts.runs ?? 30;
  const update = new Uint8Array(new Float32Array((opts.params ?? DEFAULT_MLP_PARAMS)).map(() => Math.random() - 0.5).buffer);
  return [mlkemRow(new NativeMlKem(), runs, update), mlkemRow(new NobleMlKem(), runs, update), x25519Row(runs, update.length)];
}

export function formatKemTable(rows: KemRow[]): string {
  const f = (x: number | null) => (x === null ? '-' : x.toFixed(3));
  const head = ['scheme', 'impl', 'keygen ms', 'encaps ms', 'decaps ms', 'seal update ms', 'open update ms', 'pk bytes', 'overhead bytes', 'runs'];
  const body = rows.map((r) => [r.scheme, r.implementation, f(r.keygenMs), f(r.encapsulateMs), f(r.decapsulateMs), f(r.sealUpdateMs), f(r.openUpdateMs), String(r.publicKeyBytes), String(r.ciphertextBytes), String(r.runs)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const bytes = rows[0]?.updateBytes ?? 0;
  return [`update of ${bytes / 4} float32 = ${bytes} bytes`, line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export interface KemTestnetRun {
  sealUpdates: boolean;
  /** Seconds from launch until every miner's chain held `aggregations` aggregations (1 s polls). */
  secondsToTarget: number | null;
  /** The same from the first uploaded update (leaves out process start-up and model loading). */
  secondsFromFirstUpload: number | null;
  uploaded: number;
  converged: boolean;
  /** Sealed runs: CPU spent sealing and opening, summed over the nodes, and the nodes' whole CPU
   * time (all threads: training, proof of work, everything), from each node's /status. */
  sealingCpuMs: number | null;
  processCpuMs: number | null;
  sealingShareOfCpu: number | null;
  error?: string;
}

export interface KemTestnetResult {
  aggregations: number;
  miners: number;
  clients: number;
  runs: KemTestnetRun[];
  /** Mean of the sealed runs' secondsFromFirstUpload over the clear ones' − 1. */
  cost: number | null;
}

/**
 * End-to-end cost of sealing: the testnet (separate processes on loopback, real libp2p) to
 * `aggregations` aggregations, alternating sealed and clear runs in one invocation so both see
 * the same machine load.
 */
export async function benchKemTestnet(o: { aggregations?: number; miners?: number; clients?: number; repeats?: number; onRun?: (r: KemTestnetRun) => void } = {}): Promise<KemTestnetResult> {
  const { runTestnet } = await import('../src/node/testnet.ts');
  const aggregations = o.aggregations ?? 10;
  const miners = o.miners ?? 2;
  const clients = o.clients ?? 6;
  const runs: KemTestnetRun[] = [];
  for (let i = 0; i < (o.repeats ?? 1) * 2; i++) {
    const sealUpdates = i % 2 === 0;
    let reachedAt: number | null = null;
    let firstUpload: number | null = null;
    const s = await runTestnet({
      miners,
      clients,
      aggregations,
      keep: false,
      timeoutSeconds: 600,
      p2p: { sealUpdates },
      onProgress: (p) => {
        if (firstUpload === null && p.uploaded > 0) firstUpload = p.seconds;
        if (reachedAt === null && p.aggregations >= aggregations) reachedAt = p.seconds;
      },
    });
    const stats = [...s.miners, ...s.clients].map((n) => n.sealing as { sealMs: number; openMs: number; processCpuMs: number } | null | undefined).filter((x) => x);
    const sealingCpuMs = stats.length ? stats.reduce((a, x) => a + x!.sealMs + x!.openMs, 0) : null;
    const processCpuMs = stats.length ? stats.reduce((a, x) => a + x!.processCpuMs, 0) : null;
    const r: KemTestnetRun = {
      sealUpdates,
      sealingCpuMs,
      processCpuMs,
      sealingShareOfCpu: sealingCpuMs !== null && processCpuMs ? sealingCpuMs / processCpuMs : null,
      secondsToTarget: reachedAt,
      secondsFromFirstUpload: reachedAt !== null && firstUpload !== null ? reachedAt - firstUpload : null,
      uploaded: s.clients.reduce((n, c) => n + ((c.uploaded as number) ?? 0), 0),
      converged: s.converged,
      ...(s.error ? { error: s.error } : {}),
    };
    runs.push(r);
    o.onRun?.(r);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const of = (sealed: boolean) => runs.filter((r) => r.sealUpdates === sealed && r.secondsFromFirstUpload !== null).map((r) => r.secondsFromFirstUpload!);
  const on = of(true);
  const off = of(false);
  return { aggregations, miners, clients, runs, cost: on.length && off.length ? mean(on) / mean(off) - 1 : null };
}
