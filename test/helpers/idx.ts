import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** An IDX file: magic (unsigned bytes, rank), its dimensions, its data. */
export function idxFile(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

/** The four MNIST-layout IDX files of a data set of height × width images in `dir` (what
 * loadDataset('idx:DIR') reads): `train` and `test` samples, labels cycling through 10 classes. */
export async function writeIdxImages(dir: string, o: { height: number; width: number; train: number; test: number }): Promise<void> {
  const size = o.height * o.width;
  for (const [prefix, n] of [['train', o.train], ['t10k', o.test]] as const) {
    await writeFile(join(dir, `${prefix}-images-idx3-ubyte`), idxFile([n, o.height, o.width], Uint8Array.from({ length: n * size }, (_, k) => (k * 37) % 256)));
    await writeFile(join(dir, `${prefix}-labels-idx1-ubyte`), idxFile([n], Uint8Array.from({ length: n }, (_, k) => k % 10)));
  }
}
