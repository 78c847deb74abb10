/**
 * glibc's malloc settings for a node process (issue 13: a miner's memory that stops growing).
 * glibc serves a block above its mmap threshold with its own mmap, unmapped when freed, but it
 * raises that threshold (up to 32 MB) each time such a block is freed; after the first freed
 * global model (~636 kB) every later model, update and block buffer came from the heap instead,
 * whose holes between long-lived objects are not given back: a miner's [heap] mapping held
 * 125-150 MB, growing with the aggregations. A fixed threshold turns that adjustment off (and with
 * it the trim threshold's, so the heap's free top is returned too). Measured in a plain testnet
 * (docs/decisions.md, "A miner's memory: what bounds it"): RSS ~410-470 MB instead of ~600-630 MB.
 * The cost is a fresh mapping, zeroed by the kernel, per large buffer.
 *
 * glibc reads these variables once, at start: they must be in a node's environment before it
 * runs, so whoever starts nodes sets them (bfl-node testnet, the Docker image, the e2e cluster;
 * an operator's own unit: README). musl and other allocators ignore them.
 */
export const nodeMallocEnv: Readonly<Record<string, string>> = {
  // 128 kB, glibc's own starting threshold: models, updates and blocks (≥ 100s of kB) get their
  // own mappings; the small objects of LevelDB, libp2p and V8 stay in the heap and arenas
  MALLOC_MMAP_THRESHOLD_: String(128 * 1024),
};

/** The environment for a spawned node: these settings unless the caller's environment sets them. */
export function withNodeMallocEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...nodeMallocEnv, ...env };
}

/**
 * V8 options for a node process. Node 24 sizes the young generation from the machine's memory:
 * on the 24 GiB test machine a miner's new space grew to 128 MB committed (two 64 MB
 * semi-spaces) holding ~3 MB of live objects, most of a miner's "JS heap total" of ~180 MB, and it
 * grew there over the first minutes of a run, after the soak's baseline. 16 MB semi-spaces are
 * Node's default of old (≤ 18) on 64-bit machines: more frequent scavenges, each as cheap (a
 * scavenge's cost is the live objects it copies, ~3 MB here).
 */
export const nodeV8Args: readonly string[] = ['--max-semi-space-size=16'];
