/**
 * No Docker engine runs here, so the compose testnet is checked against the config its init
 * service writes: the same init command, run locally, must produce a member for every service,
 * with the role, key file, data directory, addresses and ports the service uses.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadNetworkConfig } from '../../src/config/network.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { initNetwork } from '../../src/config/local-network.ts';
import { parseAttack } from '../../src/experiments/attacks.ts';
import { tmpDir } from '../helpers/tmp.ts';

const root = new URL('../../', import.meta.url).pathname;
const compose = parse(readFileSync(join(root, 'docker/compose.yml'), 'utf8'), { merge: true }); // compose uses YAML merge keys (<<: *node)
const flag = (cmd: string[], name: string) => cmd[cmd.indexOf(name) + 1];

it('the compose testnet matches the config its init service writes', async () => {
  const init = compose.services.init.command as string[];
  expect(init.slice(0, 3)).toEqual(['init', '--docker', '--if-absent']);
  // the init command parses with our own CLI definition
  const initCmd = (await buildProgram()).commands.find((c) => c.name() === 'init')!;
  expect(initCmd.options.map((o) => o.long)).toEqual(expect.arrayContaining(init.filter((a) => a.startsWith('--'))));
  const dir = await tmpDir('bfl-docker-');
  await initNetwork({ dir, docker: true, miners: Number(flag(init, '--miners')), clients: Number(flag(init, '--clients')), host: '0.0.0.0', basePort: 0, networkId: flag(init, '--network-id'), force: false, chain: { phi: Number(flag(init, '--phi')) } });
  const cfg = await loadNetworkConfig(join(dir, 'network.json'));
  const mount = flag(init, '--dir');
  const nodes = Object.entries(compose.services).filter(([name, s]) => name !== 'init' && name !== 'experiment' && !(s as { profiles?: string[] }).profiles?.includes('monitoring')) as [string, { command: string[]; depends_on: object; volumes: string[]; ports?: string[]; profiles?: string[] }][];
  expect(nodes.map(([n]) => n).sort()).toEqual(cfg.members.map((m) => m.id).sort());
  const hostPorts = new Set<string>();
  for (const [name, svc] of nodes) {
    const cmd = svc.command;
    const member = cfg.members.find((m) => m.id === name)!;
    expect(flag(cmd, '--role'), name).toBe(member.role);
    expect(flag(cmd, '--config')).toBe(`${mount}/network.json`);
    expect(flag(cmd, '--identity')).toBe(`${mount}/keys/${name}.json`);
    expect(flag(cmd, '--datadir')).toBe(`${mount}/data/${name}`);
    expect(svc.volumes).toContain(`testnet:${mount}`);
    // miners after init; clients also wait for every miner to be healthy (GET /healthz)
    const miners = cfg.members.filter((m) => m.role === 'miner').map((m) => [m.id, { condition: 'service_healthy' }]);
    expect(svc.depends_on).toEqual({ init: { condition: 'service_completed_successfully' }, ...(member.role === 'client' ? Object.fromEntries(miners) : {}) });
    const addr = cfg.addresses.get(name)!;
    expect(addr.listen).toBe('/ip4/0.0.0.0/tcp/4001');
    expect(addr.dial).toBe(`/dns4/${name}/tcp/4001`); // the service name is the host name
    expect(addr.api).toBe('0.0.0.0:8080');
    for (const p of svc.ports ?? []) {
      const [ip, host, container] = p.split(':');
      expect(ip, `${name} publishes its API on loopback only`).toBe('127.0.0.1');
      expect(container).toBe('8080');
      expect(hostPorts.has(host), `host port ${host} used twice`).toBe(false);
      hostPorts.add(host);
    }
    if (cmd.includes('--attack')) {
      expect(member.role).toBe('client');
      expect(svc.profiles).toEqual(['attack']);
      expect(() => parseAttack(flag(cmd, '--attack'))).not.toThrow();
    }
  }
  expect(nodes.some(([, s]) => s.profiles?.includes('attack'))).toBe(true);
  // miners are reachable from the host for /status
  for (const m of cfg.members.filter((x) => x.role === 'miner')) expect(compose.services[m.id].ports?.length, m.id).toBe(1);
});

it('the image runs Node 24 and the program as its entry point', () => {
  const df = readFileSync(join(root, 'docker/Dockerfile'), 'utf8');
  expect(df).toMatch(/^FROM node:24/m);
  expect(df).toMatch(/ENTRYPOINT \["node", "bin\/bfl-node.js"\]/);
  expect(df).toMatch(/npm ci --omit=dev/);
  expect(compose.services.init.build).toMatchObject({ context: '..', dockerfile: 'docker/Dockerfile' });
  expect(compose.services.init.build.args.BFL_COMMIT).toBeDefined(); // bfl_build_info's commit (the image has no .git)
  expect(df).toMatch(/^ARG BFL_COMMIT/m);
  // no onnxruntime download from outside the registry, no darwin/win32 binaries in the image
  expect(df).toMatch(/ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
  expect(df).toMatch(/rm -rf node_modules\/onnxruntime-node\/bin\/napi-v6\/darwin node_modules\/onnxruntime-node\/bin\/napi-v6\/win32/);
});

it('experiments can write their output in the container: --out defaults under a volume the node user owns', async () => {
  const df = readFileSync(join(root, 'docker/Dockerfile'), 'utf8');
  const workdir = /^WORKDIR (\S+)/m.exec(df)![1];
  const out = (await buildProgram()).commands.find((c) => c.name() === 'experiment')!.commands.find((c) => c.name() === 'attack')!.options.find((o) => o.long === '--out')!.defaultValue;
  const outDir = `${workdir}/${out}`;
  expect(df).toMatch(new RegExp(`mkdir -p [^\\n]*${outDir}.*chown node:node [^\\n]*${outDir}`));
  expect(df).toMatch(/^USER node/m);
  const svc = compose.services.experiment;
  expect(svc.volumes).toContain(`out:${outDir}`);
  expect(svc.entrypoint).toEqual(['node', 'bin/bfl-node.js', 'experiment']);
  expect(Object.keys(compose.volumes)).toContain('out');
});

it('npm reads the project .npmrc without "Unknown project config" and skips onnxruntime\'s download script', () => {
  const r = spawnSync('npm', ['config', 'get', 'engine-strict'], { cwd: root, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'warn' } });
  expect(r.status).toBe(0);
  expect(r.stderr).not.toMatch(/Unknown (project|user|env) config/);
  expect(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).allowScripts['onnxruntime-node']).toBe(false);
});

it('the image checks its health on /healthz; init, which serves nothing, does not', () => {
  const df = readFileSync(join(root, 'docker/Dockerfile'), 'utf8');
  const hc = /^HEALTHCHECK .*\\\n\s*CMD (\[.*\])$/m.exec(df);
  expect(hc, 'a HEALTHCHECK in exec form').not.toBeNull();
  const cmd = JSON.parse(hc![1]) as string[];
  expect(cmd.slice(0, 2)).toEqual(['node', '-e']);
  expect(cmd[2]).toContain("'http://127.0.0.1:8080/healthz'"); // the API port of the compose layout (addresses checked above)
  expect(compose.services.init.healthcheck).toEqual({ disable: true });
  expect(compose.services.experiment.healthcheck).toEqual({ disable: true });
});

it('the monitoring profile: Prometheus scrapes every node, Grafana gets the data source and dashboard', () => {
  const { prometheus, grafana } = compose.services;
  expect(prometheus.profiles).toEqual(['monitoring']);
  expect(grafana.profiles).toEqual(['monitoring']);
  const nodeServices = Object.entries(compose.services)
    .filter(([name, s]) => name !== 'init' && name !== 'experiment' && !(s as { profiles?: string[] }).profiles?.includes('monitoring'))
    .map(([name]) => name);
  const mount = (svc: { volumes: string[] }, target: string) => svc.volumes.find((v) => v.split(':')[1] === target)?.split(':')[0];
  const promFile = join(root, 'docker', mount(prometheus, '/etc/prometheus/prometheus.yml')!);
  const prom = parse(readFileSync(promFile, 'utf8'));
  const targets = prom.scrape_configs.flatMap((c: { static_configs: { targets: string[] }[] }) => c.static_configs.flatMap((s) => s.targets));
  expect(targets.sort()).toEqual(nodeServices.map((n) => `${n}:8080`).sort());
  const provisioning = join(root, 'docker', mount(grafana, '/etc/grafana/provisioning')!);
  const ds = parse(readFileSync(join(provisioning, 'datasources/prometheus.yml'), 'utf8')).datasources[0];
  expect(ds).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', uid: 'prometheus' });
  const dashDir = mount(grafana, '/var/lib/grafana/dashboards')!;
  const provider = parse(readFileSync(join(provisioning, 'dashboards/bfl-node.yml'), 'utf8')).providers[0];
  expect(provider.options.path).toBe('/var/lib/grafana/dashboards');
  const dashboard = JSON.parse(readFileSync(join(root, 'docker', dashDir, 'bfl-node.json'), 'utf8'));
  expect(grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe('/var/lib/grafana/dashboards/bfl-node.json');
  // every panel queries the provisioned data source
  const uids = new Set<string>();
  const visit = (ps: any[]) => ps?.forEach((p) => (p.datasource && uids.add(p.datasource.uid), visit(p.panels)));
  visit(dashboard.panels);
  expect([...uids]).toEqual([ds.uid]);
});
