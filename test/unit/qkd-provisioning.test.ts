import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultProvisioning, runProvisioning } from '../../src/experiments/provisioning.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { mesh } from '../helpers/qkd.ts';

describe('experiment provisioning (small)', () => {
  it('writes Figs. 5-8 for a topology, with SIP the cheapest plan', async () => {
    const out = await tmpDir('bfl-prov-');
    const topo = join(out, 'mesh.json');
    await writeFile(topo, JSON.stringify(mesh));
    const r = await runProvisioning({ ...defaultProvisioning, topologies: [topo], requests: { [topo]: [6, 12] }, defaultRequests: { [topo]: 12 }, scenarios: [3, 5], factors: [0.5, 1], levels: 4, out });
    const n = r.results.mesh;
    expect(n.costStructure.map((c) => c.reserved)).toEqual([0, 1, 2, 3, 4]);
    for (let i = 1; i < n.costStructure.length; i++) expect(n.costStructure[i].firstStageCost).toBeGreaterThan(n.costStructure[i - 1].firstStageCost);
    expect(n.requests.map((x) => x.requests)).toEqual([6, 12]);
    for (const row of [...n.requests, ...n.scenarios, ...n.factors]) {
      expect(row.sip.status).toBe('optimal');
      expect(row.evf.totalCost).toBeGreaterThanOrEqual(row.sip.totalCost - 1e-6);
      expect(row.random.totalCost).toBeGreaterThanOrEqual(row.sip.totalCost - 1e-6);
    }
    // more requests cost more
    expect(n.requests[1].sip.totalCost).toBeGreaterThan(n.requests[0].sip.totalCost);
    expect(r.summary.topologies.mesh.evfOverSip).toBeGreaterThanOrEqual(1);
    for (const f of r.files) expect(existsSync(f), f).toBe(true);
    expect(r.files).toContain(join(out, 'provisioning-mesh-cost-structure.png'));
    expect(r.files.filter((f) => f.endsWith('.png'))).toHaveLength(4);
  });
});
