/**
 * One Prometheus registry per process, created in one place; subsystems receive it as an
 * optional dependency (`metrics?: Metrics`) and register their own series with the unit in the
 * name (`_seconds`, `_bytes`, `_total`, `_ratio`).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry: Registry;

  constructor(opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {}) {
    this.registry = new Registry();
    if (opts.labels) this.registry.setDefaultLabels(opts.labels);
    // No prefix: process_* and nodejs_* under their standard names, so stock Node.js dashboards work.
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  counter<L extends string = string>(name: string, help: string, labelNames: L[] = []): Counter<L> {
    return (this.registry.getSingleMetric(name) as Counter<L>) ?? new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** `collect`, if given, runs at every scrape (values read from elsewhere, e.g. open connections);
   * the scrape waits for it if it returns a promise. */
  gauge<L extends string = string>(name: string, help: string, labelNames: L[] = [], collect?: (g: Gauge<L>) => void | Promise<void>): Gauge<L> {
    return (
      (this.registry.getSingleMetric(name) as Gauge<L>) ??
      new Gauge({ name, help, labelNames, registers: [this.registry], ...(collect ? { collect() { return collect(this); } } : {}) })
    );
  }

  histogram<L extends string = string>(name: string, help: string, buckets: number[], labelNames: L[] = []): Histogram<L> {
    return (this.registry.getSingleMetric(name) as Histogram<L>) ?? new Histogram({ name, help, buckets, labelNames, registers: [this.registry] });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Seconds buckets from 1 ms to 30 s: block validation and aggregation span that range (a block
 * of a few records validates in ms; recomputing a 100-update aggregation takes about half a second). */
export const durationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Run `f`, observing its duration in `h` (when metrics are on) whether it resolves or throws. */
export async function timed<T>(h: Histogram | undefined, f: () => Promise<T> | T): Promise<T> {
  const end = h?.startTimer();
  try {
    return await f();
  } finally {
    end?.();
  }
}
