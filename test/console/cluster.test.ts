// The console in a cluster (W2, W3): every host's WPARs with their host, and the hosts; Stop on
// another host's WPAR and Move to another host act through the cluster. Real etcd, two test hosts
// in network namespaces, Debian's Chromium run in the first host's namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ClusterNet, type ClusterHost } from '../e2e/cluster-hosts.ts';
import { canMakeHosts } from '../e2e/move-hosts.ts';
import { haveEtcd } from '../support/etcd.ts';
import { launch, NO_BROWSER } from './browser.ts';

const skip = NO_BROWSER || (!canMakeHosts() ? 'needs root and iproute2 for network namespaces' : !haveEtcd() ? 'needs etcd (scripts/install-system-deps.sh --tests)' : false);

function row(page: Page, name: string) {
  return page.locator('#wpars tbody tr').filter({ has: page.getByRole('rowheader', { name, exact: true }) });
}

describe('the console of a cluster member', { skip, timeout: 120_000 }, () => {
  const net = new ClusterNet();
  let a: ClusterHost; let b: ClusterHost;
  before(async () => {
    net.create();
    a = net.host('a'); b = net.host('b');
    await net.startEtcd();
    await Promise.all([a.start('alpha', ['--lease-ttl', '3', '--http', `${a.address}:8080`]), b.start('beta')]);
  });
  after(async () => { await net.destroy(); });

  it('shows every host\'s WPARs with their host and the hosts; Stop and Move act through the cluster', async () => {
    await a.ok('mkwpar', ['-n', 'far', '--host', 'beta', '-s', '--', 'sleep', '600']);
    await a.ok('mkwpar', ['-c', '-n', 'near', '--host', 'alpha', '-s', '--', 'sleep', '600']);
    const token = readFileSync(join(a.home, 'console.token'), 'utf8').trim();

    await using browser = await launch({ netns: a.ns });
    const page = await browser.newPage();
    await page.goto(`http://${a.address}:8080/?token=${token}`);
    await row(page, 'near').locator('td.host', { hasText: 'alpha' }).waitFor();
    await row(page, 'far').locator('td.host', { hasText: 'beta' }).waitFor();
    await row(page, 'far').locator('td.state', { hasText: 'active' }).waitFor();
    const hosts = page.getByRole('table', { name: 'Hosts' });
    await hosts.getByRole('row').filter({ hasText: 'alpha (this host)' }).getByText('up', { exact: true }).waitFor();
    await hosts.getByRole('row').filter({ hasText: 'beta' }).getByText('up', { exact: true }).waitFor();
    assert.equal(await row(page, 'far').getByRole('button', { name: 'Checkpoint' }).isDisabled(), true, 'its image would be another host\'s');

    // Stop on beta's WPAR: forwarded to beta; the row follows within a read of the cluster.
    await row(page, 'far').getByRole('button', { name: 'Stop' }).click();
    await page.getByRole('status').getByText('Stopped far.').waitFor();
    await row(page, 'far').locator('td.state', { hasText: 'defined' }).waitFor();
    assert.equal((await b.list()).find((w) => w.name === 'far')?.state, 'D');

    // Move asks for the host (offering the up ones) and hands the WPAR over.
    page.once('dialog', (d) => { assert.match(d.message(), /beta/); void d.accept('beta'); });
    await row(page, 'near').getByRole('button', { name: 'Move' }).click();
    await page.getByRole('status').getByText('Moved near to beta.').waitFor({ timeout: 60_000 });
    await row(page, 'near').locator('td.host', { hasText: 'beta' }).waitFor();
    await row(page, 'near').locator('td.state', { hasText: 'active' }).waitFor();
    const moved = (await a.list()).find((w) => w.name === 'near');
    assert.deepEqual([moved?.host, moved?.state, moved?.epoch], ['beta', 'A', 2]);

    // A host whose link is cut is shown lost once its lease is gone.
    b.link(false);
    await hosts.getByRole('row').filter({ hasText: 'beta' }).getByText('lost', { exact: true }).waitFor({ timeout: 30_000 });
    b.link(true);
  });
});
