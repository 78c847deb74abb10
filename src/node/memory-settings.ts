/**
 * glibc's malloc settings for a node process (issue 13: a miner's memory that stops growing).
 * glibc serves a block above its mmap threshold with its own mmap, unmapped when freed, but it
 * raises that threshold (up to 32 MB) each time such a block is freed; after the first freed
 * global model (~636 kB) every later model, update and block buffer came from the heap instead,
 * whose holes between long-lived objects are not given back: a miner's [heap] mapping held
 * 125-150 MB, growing with the aggregations. A fixed threshold turns that adjustment off (and with
 * it the trim threshold's, so the heap's free top is returned too). Measured in a plain testnet
 * (docs/decisions.md, "A miner's memory: what bounds it"): RSS ~410-470 MB instead of ~600-630 MB.
 * The cost is a fresh mapping, zeroed by the kernel, per large buffer. The threshold itself is
 * set below the network's read buffers (see nodeMallocEnv).
 *
 * glibc reads these variables once, at start: they must be in a node's environment before it
 * runs. The bfl-node launcher (bin/bfl-node.js) re-executes Node with them (launchSettings below);
 * a parent that talks to its node over IPC (bfl-node testnet, the e2e cluster) passes them itself,
 * since a re-executed process loses the IPC channel. musl and other allocators ignore them.
 */
export const nodeMallocEnv: Readonly<Record<string, string>> = {
  // 32 kB (glibc's own starting threshold is 128 kB): models, updates and blocks get their own
  // mappings, and so do the network's buffers. Node reads a socket into a fresh 64 kB buffer and
  // shrinks it to what arrived; libp2p holds such chunks until a message is whole, and the small
  // objects allocated meanwhile pin the holes they leave: at 128 kB a miner's [heap] held ~100 MB,
  // 45 MB of it free, in a shortened soak at 12 uploads a second (malloc_info). Measured on
  // loopback (300 messages of 636 kB read, assembled and dropped, small buffers kept between
  // them: the unit test): [heap] 66-72 MB left at 128 kB, 36 at 64 kB, 7-11 at 32 kB, 6-8 at
  // 16 kB. The cost is system time for a mapping per buffer (~1.3 ms per MB received there: ~1 %
  // of a core at the soak's upload rate; at saturation, `bench ingest` takes ~12 % fewer updates a
  // second than at 128 kB, docs/decisions.md "Update ingestion"). Below 32 kB are LevelDB's 4 kB blocks, libp2p's frames
  // and V8's and OpenSSL's small objects: they stay in the heap and arenas.
  MALLOC_MMAP_THRESHOLD_: String(32 * 1024),
};

/**
 * V8 options for a node process. Node 24 sizes the young generation from the machine's memory:
 * on the 24 GiB test machine a miner's new space grew to 128 MB committed (two 64 MB
 * semi-spaces) holding ~3 MB of live objects, most of a miner's "JS heap total" of ~180 MB, and it
 * grew there over the first minutes of a run, after the soak's baseline. 16 MB semi-spaces are
 * Node's default of old (≤ 18) on 64-bit machines: more frequent scavenges, each as cheap (a
 * scavenge's cost is the live objects it copies, ~3 MB here).
 */
export const nodeV8Args: readonly string[] = ['--max-semi-space-size=16'];

/** Node's background thread pool for V8 on machines of this many cores or fewer: 1 (issue 12,
 * `bench ingest`: 10-15 % less CPU per update; `bench pow` unchanged; docs/decisions.md, "Update
 * ingestion", fifth pass). Node starts 4 whatever the machine; on 2 cores their concurrent marking
 * and sweeping cost more CPU than they save. */
export const singleV8ThreadMaxCores = 2;

/** What a bfl-node process is started with, beyond the operator's own settings: the node
 * options and environment variables above that the operator has not set (in the node's flags,
 * NODE_OPTIONS or the environment). One list for the launcher and for parents that spawn nodes. */
export function launchSettings(execArgv: readonly string[], env: NodeJS.ProcessEnv, cores: number): { args: string[]; env: Record<string, string> } {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)];
  const has = (flag: string) => given.some((a) => a === flag || a.startsWith(`${flag}=`) || a.startsWith(`${flag.replaceAll('-', '_')}=`));
  const args: string[] = [];
  if (cores <= singleV8ThreadMaxCores && !has('--v8-pool-size')) args.push('--v8-pool-size=1');
  for (const a of nodeV8Args) if (!has(a.split('=')[0])) args.push(a);
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(nodeMallocEnv)) if (env[k] === undefined) extra[k] = v;
  return { args, env: extra };
}
