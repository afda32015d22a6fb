/**
 * Clusters (issue 9): `lswpar` across a cluster of 3 hosts holding 1,000 WPARs between them ÷
 * `lswpar` of 1,000 WPARs on one host (not in a cluster), both as the real command (median of 5).
 * The cluster runs on test hosts in network namespaces with a real etcd (test/e2e/cluster-hosts.ts).
 * Needs root, iproute2 and etcd; skipped otherwise.
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ClusterNet, type ClusterHost } from '../test/e2e/cluster-hosts.ts';
import { System } from '../test/e2e/harness.ts';
import { canMakeHosts } from '../test/e2e/move-hosts.ts';
import { haveEtcd } from '../test/support/etcd.ts';
import { verdict, type Row } from './measure.ts';

const WPARS = 1000;
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;

/** POST /v1/wpars on a home's control socket; rejects on a non-201 answer. */
function define(home: string, name: string, host?: string): Promise<void> {
  const body = JSON.stringify({ definition: { name, argv: ['sleep', '600'], env: {}, limits: {}, checkpointable: false, autostart: false }, ...(host !== undefined && { host }) });
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(home, 'run/wpard.sock'), path: '/v1/wpars', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`${name}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Defines `names` with at most 8 requests in flight. */
async function defineAll(home: string, names: readonly string[], host?: (i: number) => string): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < names.length) {
      const i = next++;
      await define(home, names[i]!, host?.(i));
    }
  }));
}

/** Median time of `GET /v1/wpars` on a home's control socket (the daemon's side only), 15 runs. */
async function timeApi(home: string, expect: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t = performance.now();
    const n = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: join(home, 'run/wpard.sock'), path: '/v1/wpars' }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => { text += d; });
        res.on('end', () => resolve((JSON.parse(text) as unknown[]).length));
      });
      req.on('error', reject);
      req.end();
    });
    times.push(performance.now() - t);
    if (n !== expect) throw new Error(`GET /v1/wpars listed ${n}, expected ${expect}`);
  }
  return median(times);
}

async function timeLswpar(run: () => Promise<{ code: number | null; stdout: string }>, expect: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const r = await run();
    times.push(performance.now() - t);
    const n = (JSON.parse(r.stdout) as unknown[]).length;
    if (r.code !== 0 || n !== expect) throw new Error(`lswpar listed ${n}, expected ${expect}`);
  }
  return median(times);
}

/** The cluster rows of `npm run bench`. */
export async function clusterBench(): Promise<Row[]> {
  if (!canMakeHosts() || !haveEtcd()) return [{ measure: 'cluster', value: 'skipped', baseline: '-', ratio: '-', target: 'needs root, iproute2 and etcd' }];
  const names = Array.from({ length: WPARS }, (_, i) => `w${String(i).padStart(4, '0')}`);
  const single = await System.start();
  const net = new ClusterNet();
  try {
    await defineAll(single.home, names);
    const one = await timeLswpar(() => single.run('lswpar', ['--json']), WPARS);
    const oneApi = await timeApi(single.home, WPARS);
    net.create();
    const hosts: ClusterHost[] = [net.host('a'), net.host('b'), net.host('c')];
    await net.startEtcd();
    await Promise.all(hosts.map((h, i) => h.start(['alpha', 'beta', 'gamma'][i]!, ['--lease-ttl', '10'])));
    const t = performance.now();
    await defineAll(hosts[0]!.home, names, (i) => ['alpha', 'beta', 'gamma'][i % 3]!);
    const defineMs = performance.now() - t;
    const three = await timeLswpar(() => hosts[0]!.run('lswpar', ['--json']), WPARS);
    const threeApi = await timeApi(hosts[0]!.home, WPARS);
    return [
      { measure: `lswpar --json, ${WPARS} WPARs on 3 hosts`, value: `${three.toFixed(0)} ms`, baseline: `${one.toFixed(0)} ms on one host`, ratio: `${(three / one).toFixed(2)}×`, target: verdict(three / one <= 1.5, '≤ 1.5×') },
      { measure: '  GET /v1/wpars (the daemon\'s part, median of 15)', value: `${threeApi.toFixed(1)} ms`, baseline: `${oneApi.toFixed(1)} ms on one host`, ratio: `${(threeApi / oneApi).toFixed(2)}×`, target: 'reported' },
      { measure: `  mkwpar through the cluster (API, 8 in flight)`, value: `${(defineMs / WPARS).toFixed(1)} ms each`, baseline: '-', ratio: '-', target: 'reported' },
    ];
  } finally {
    await net.destroy();
    await single[Symbol.asyncDispose]();
  }
}
