// Regenerates the golden vectors in test/vectors/ (encoding.json, aggregation.json). Only for a
// deliberate change of the canonical encoding or the aggregation arithmetic: the tests that read
// these files exist to catch accidental ones. aggregation.json keeps its stored inputs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { computeAggregationVectors } from '../test/vectors/aggregation-vectors.ts';
import { computeVectors } from '../test/vectors/compute.ts';

const dir = new URL('../test/vectors/', import.meta.url);
writeFileSync(new URL('encoding.json', dir), JSON.stringify(computeVectors(), null, 2) + '\n');
const aggFile = new URL('aggregation.json', dir);
const stored = existsSync(aggFile) ? JSON.parse(readFileSync(aggFile, 'utf8')) : undefined;
writeFileSync(aggFile, JSON.stringify(computeAggregationVectors(stored), null, 1) + '\n');
console.log(`wrote ${dir.pathname}encoding.json and aggregation.json`);
