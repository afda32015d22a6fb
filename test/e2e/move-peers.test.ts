// Identity and trust (M1, M2) between test hosts in network namespaces: `wpar identity`, `wpar peer`,
// and the peer endpoint refusing an untrusted host, a client without a certificate, and a known
// peer that presents another certificate — each before any request is read, with `peer.refused`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, subscribe, System } from './harness.ts';
import { canMakeHosts, pair, TestNet, type Host } from './move-hosts.ts';

const PROBE = join(ROOT, 'test/e2e/fixtures/tls-probe.ts');

function events(h: Host, type: string): Record<string, unknown>[] {
  return readFileSync(join(h.home, 'events.log'), 'utf8').split('\n').filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.type === type);
}

function probe(from: Host, to: Host, withIdentityOf?: Host): { handshake: boolean; bytes: number; how: string } {
  const id = withIdentityOf ? [join(withIdentityOf.home, 'identity/key.pem'), join(withIdentityOf.home, 'identity/cert.pem')] : [];
  const r = from.exec([process.execPath, PROBE, to.address, '7070', ...id]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { handshake: boolean; bytes: number; how: string };
}

/** Subscribes to `h`'s events; resolves to the first matching one (the test's timeout bounds it). */
async function next(h: Host, predicate: (e: Record<string, unknown>) => boolean): Promise<{ event: Promise<Record<string, unknown>> }> {
  return subscribe({ home: h.home } as unknown as System, predicate);
}

describe('identity and peers', { skip: !canMakeHosts() && 'needs root and iproute2 for network namespaces', timeout: 120_000 }, () => {
  let net: TestNet;
  let a: Host; let b: Host; let c: Host;
  before(async () => {
    net = TestNet.create();
    a = net.host('a'); b = net.host('b'); c = net.host('c');
    await Promise.all([a.start('alpha'), b.start('beta'), c.start('gamma')]);
    await pair(a, b);
  });
  after(async () => { await net?.destroy(); });

  it('wpar identity prints the name, a sha256 fingerprint and the endpoint; the key is 0600', async () => {
    const id = await a.identity();
    assert.equal(id.name, 'alpha');
    assert.match(id.fingerprint, /^sha256:[0-9a-f]{64}$/);
    assert.equal(id.listen, a.endpoint);
    const plain = (await a.ok('wpar', ['identity'])).trim();
    assert.equal(plain, `alpha ${id.fingerprint} ${a.endpoint}`);
    const { statSync } = await import('node:fs');
    assert.equal(statSync(join(a.home, 'identity/key.pem')).mode & 0o777, 0o600);
  });

  it('without --listen nothing listens and listen is null', async () => {
    await using sys = await System.start({ args: ['--name', 'lonely'] });
    const id = JSON.parse(await sys.ok('wpar', ['identity', '--json'])) as { name: string; listen: unknown };
    assert.deepEqual([id.name, id.listen], ['lonely', null]);
  });

  it('peer add / ls / rm, with bad input refused and nothing changed', async () => {
    const ib = await b.identity();
    const ls = JSON.parse(await a.ok('wpar', ['peer', 'ls', '--json'])) as { name: string; fingerprint: string; address: string }[];
    assert.deepEqual(ls, [{ name: 'beta', fingerprint: ib.fingerprint, address: b.endpoint }]);
    const dup = await a.run('wpar', ['peer', 'add', 'beta', ib.fingerprint]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already trusted.*\(EEXIST\)/);
    const bad = await a.run('wpar', ['peer', 'add', 'x', 'sha256:1234']);
    assert.match(bad.stderr, /bad fingerprint.*\(EINVAL\)/);
    const badAddr = await a.run('wpar', ['peer', 'add', 'x', ib.fingerprint.replace(/.$/, '0'), 'nowhere']);
    assert.match(badAddr.stderr, /bad address.*\(EINVAL\)/);
    await a.ok('wpar', ['peer', 'add', 'imgonly', `sha256:${'ab'.repeat(32)}`]);
    await a.ok('wpar', ['peer', 'rm', 'imgonly']);
    const gone = await a.run('wpar', ['peer', 'rm', 'imgonly']);
    assert.match(gone.stderr, /no such peer.*\(ENOENT\)/);
    assert.equal((JSON.parse(await a.ok('wpar', ['peer', 'ls', '--json'])) as unknown[]).length, 1);
  });

  it('the departure refuses an arrival presenting another certificate (EACCES, peer.refused), and the WPAR runs on', async () => {
    // "imposter" is trusted with gamma's fingerprint at beta's address: beta answers with its own.
    const ic = await c.identity();
    const ib = await b.identity();
    await a.ok('wpar', ['peer', 'add', 'imposter', ic.fingerprint, b.endpoint]);
    try {
      await a.ok('mkwpar', ['-n', 'stay', '-c', '-s', '--', 'sleep', '300']);
      const pid = (await a.list()).find((w) => w.name === 'stay')!.pid;
      const r = await a.run('movewpar', ['stay', 'imposter']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /presented sha256:[0-9a-f]{64}, not its trusted fingerprint.*\(EACCES\)/);
      const ev = events(a, 'peer.refused').find((e) => e.peer === 'imposter');
      assert.ok(ev, 'a peer.refused event on the departure');
      assert.deepEqual([ev['address'], ev['fingerprint']], [b.endpoint, ib.fingerprint]);
      assert.ok(events(a, 'move.failed').some((e) => e.name === 'stay'));
      const w = (await a.list()).find((x) => x.name === 'stay')!;
      assert.deepEqual([w.state, w.pid], ['A', pid]);
      await a.ok('rmwpar', ['-F', 'stay']);
    } finally {
      await a.ok('wpar', ['peer', 'rm', 'imposter']);
    }
  });

  it('a trusted peer completes the handshake; the endpoint answers only the protocol', () => {
    const r = probe(b, a, b);
    assert.equal(r.handshake, true);
  });

  it('an untrusted host is refused before any request is read, with a peer.refused event', async () => {
    const ic = await c.identity();
    const seen = await next(a, (e) => e.type === 'peer.refused' && e.fingerprint === ic.fingerprint);
    const r = probe(c, a, c);
    assert.equal(r.bytes, 0);
    assert.notEqual(r.how, 'timeout');
    const ev = await seen.event;
    assert.match(String(ev.address), new RegExp(`^${c.address.replaceAll('.', '\\.')}:\\d+$`));
    assert.match(String(ev.reason), /untrusted certificate \(claims to be gamma\)/);
  });

  it('a TLS client without a certificate gets no data', async () => {
    const seen = await next(b, (e) => e.type === 'peer.refused' && e.fingerprint === null);
    const r = probe(c, b);
    assert.equal(r.bytes, 0);
    assert.notEqual(r.how, 'timeout');
    const ev = await seen.event;
    assert.match(String(ev.reason), /no client certificate/);
    assert.ok(String(ev.address).startsWith(c.address));
  });

  it('a known peer presenting another certificate is refused, and the event says so', async () => {
    // gamma's daemon restarted under the name beta: a's list knows beta with another fingerprint.
    await c.stop();
    const { rmSync } = await import('node:fs');
    rmSync(join(c.home, 'identity'), { recursive: true, force: true });
    await c.start('beta');
    const seen = await next(a, (e) => e.type === 'peer.refused' && /another certificate/.test(String(e.reason)));
    const r = probe(c, a, c);
    assert.equal(r.bytes, 0);
    const ev = await seen.event;
    assert.match(String(ev.reason), /peer beta presented another certificate/);
    assert.equal(events(a, 'peer.refused').filter((e) => e.peer === undefined).length, 2, 'two refused by its endpoint (the third was its own move, refusing imposter)');
  });
});
