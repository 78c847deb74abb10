// Regenerates test/vectors/encoding.json from test/vectors/fixtures.ts. Only for a deliberate
// change of the canonical encoding: the test that reads the file exists to catch accidental ones.
import { writeFileSync } from 'node:fs';
import { computeVectors } from '../test/vectors/compute.ts';

const out = new URL('../test/vectors/encoding.json', import.meta.url);
writeFileSync(out, JSON.stringify(computeVectors(), null, 2) + '\n');
console.log(`wrote ${out.pathname}`);
