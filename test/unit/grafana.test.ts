/**
 * The provisioned Grafana dashboard queries only metrics the node exports: the names come from
 * the metric registrations in src/ (and prom-client's default process metrics), so renaming a
 * metric without the dashboard fails here. test/e2e/dashboard.test.ts checks the same list
 * against the /metrics of running nodes.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Metrics } from '../../src/util/metrics.ts';
import { grafanaMetricNames, grafanaQueries, metricNamesOf } from '../helpers/grafana.ts';

const src = new URL('../../src/', import.meta.url).pathname;
const files = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? files(join(d, f)) : f.endsWith('.ts') ? [join(d, f)] : []));
const series = (name: string, type: string) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name]);

/** Names registered through Metrics (counter/gauge/histogram) anywhere in src/, and the defaults. */
async function exportedNames(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const f of files(src)) for (const m of readFileSync(f, 'utf8').matchAll(/\.(counter|gauge|histogram)(?:<[^>]*>)?\(\s*'([a-zA-Z_:][\w:]*)'/g)) series(m[2], m[1]).forEach((n) => out.add(n));
  for (const m of await new Metrics({ defaultMetrics: true }).registry.getMetricsAsJSON()) series(m.name, String(m.type)).forEach((n) => out.add(n));
  return out;
}

it('the PromQL reader finds metric names, not functions, labels or variables', () => {
  expect(metricNamesOf('histogram_quantile(0.95, sum by (le) (rate(bfl_x_seconds_bucket{node=~"$node", a="b c"}[5m])))')).toEqual(['bfl_x_seconds_bucket']);
  expect(metricNamesOf('sum(rate(a_sum[5m])) / sum(rate(a_count[5m]))')).toEqual(['a_sum', 'a_count']);
  expect(metricNamesOf('label_values(bfl_build_info, node)')).toEqual(['bfl_build_info']);
  expect(metricNamesOf('count(up{job="x"}) offset 5m')).toEqual(['up']);
});

it('every query of the Grafana dashboard names a metric the node exports', async () => {
  const exported = await exportedNames();
  expect(exported).toContain('bfl_chain_height'); // the scan finds registrations
  expect(exported).toContain('process_cpu_seconds_total'); // default metrics under their standard names
  expect(exported).toContain('nodejs_eventloop_lag_p99_seconds');
  expect([...exported].filter((n) => /^bfl_(process|nodejs)_/.test(n))).toEqual([]);
  const names = grafanaMetricNames();
  expect(grafanaQueries().length).toBeGreaterThan(20);
  expect(names.filter((n) => !exported.has(n))).toEqual([]);
  // what the issue asks the dashboard to show
  for (const n of ['bfl_chain_height', 'bfl_chain_aggregations', 'bfl_model_accuracy_ratio', 'bfl_miner_hashes_per_second', 'bfl_miner_updates_total', 'bfl_gossip_messages_total', 'bfl_peers', 'bfl_block_validation_seconds_bucket', 'bfl_aggregation_seconds_bucket', 'bfl_signature_verification_seconds_bucket']) {
    expect(names, n).toContain(n);
  }
});

it('a dashboard query of a metric nobody exports is caught', async () => {
  const exported = await exportedNames();
  expect(metricNamesOf('rate(bfl_model_accuracy[1m])').filter((n) => !exported.has(n))).toEqual(['bfl_model_accuracy']); // the old name
});
