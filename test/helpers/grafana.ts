/** The metric names the provisioned Grafana dashboard queries (docker/grafana/dashboards). */
import { readFileSync } from 'node:fs';

export const grafanaDashboardPath = new URL('../../docker/grafana/dashboards/bfl-node.json', import.meta.url).pathname;

// PromQL words that are not metric names: aggregation operators, functions, modifiers.
const promqlWords = new Set(
  'sum min max avg count stddev stdvar topk bottomk quantile count_values group by without on ignoring group_left group_right bool and or unless offset rate irate increase delta idelta deriv histogram_quantile label_values label_replace label_join abs ceil floor round clamp clamp_min clamp_max exp ln log2 log10 sqrt time timestamp vector scalar sort sort_desc absent absent_over_time avg_over_time min_over_time max_over_time sum_over_time count_over_time last_over_time changes resets predict_linear holt_winters'.split(' '),
);

/** Every query string in the dashboard: panel targets and templating variables. */
export function grafanaQueries(path = grafanaDashboardPath): string[] {
  const d = JSON.parse(readFileSync(path, 'utf8'));
  const out: string[] = [];
  const visit = (panels: any[]) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (t.expr) out.push(t.expr);
      visit(p.panels);
    }
  };
  visit(d.panels);
  for (const v of d.templating?.list ?? []) if (v.type === 'query') out.push(typeof v.query === 'string' ? v.query : v.query.query);
  return out;
}

/** The metric names a PromQL query (or a label_values() variable query) refers to. */
export function metricNamesOf(q: string): string[] {
  const bare = q
    .replace(/"(?:[^"\\]|\\.)*"/g, '') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\b(offset|@)\s*\S+/g, '') // offset 5m, @ timestamps
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)/g, '$1') // label_values(metric, label)
    .replace(/\$\w+/g, ''); // dashboard variables
  return [...bare.matchAll(/[a-zA-Z_:][\w:]*/g)].map((m) => m[0]).filter((w) => !promqlWords.has(w) && !/^(e|inf|nan)$/i.test(w));
}

/** Every metric name the dashboard queries, sorted. */
export function grafanaMetricNames(path = grafanaDashboardPath): string[] {
  return [...new Set(grafanaQueries(path).flatMap(metricNamesOf))].sort();
}
