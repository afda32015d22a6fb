/**
 * The web console and `/metrics` (W1–W6), served by `wpard --http ADDR:PORT` with fastify, the
 * daemon's HTTP framework. Reads come from the WPAR manager and the journal; every action goes
 * through the daemon's control API (`fastify.inject` into the same routes the commands use), so a
 * button does exactly what the command does and fails with the same error. Routes and the event
 * stream are described in `docs/console.md`.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { HTTPMethods } from 'fastify';
import { WparError } from '../kernel/errno.ts';
import { checkName } from '../daemon/definition-check.ts';
import type { HomeLayout } from '../daemon/home.ts';
import type { Journal } from '../daemon/journal.ts';
import { statusFor, type ApiError, type DaemonEvent, type WparInfo } from '../daemon/protocol.ts';
import { EVENT_HISTORY } from '../daemon/store.ts';
import type { WparManager } from '../daemon/wpars.ts';
import { followLog } from '../runtime/console-log.ts';
import type { CgroupSupport } from '../runtime/isolation.ts';
import { Access, consoleToken, refuseChange } from './access.ts';
import { isLoopback, type HttpAddress } from './address.ts';
import { ClusterView, type ClusterSnapshot } from './cluster-view.ts';
import { ConsoleMetrics } from './metrics.ts';
import { readUsage, type Usage } from './usage.ts';

/**
 * The daemon's move route (`src/peer/move.ts`, `:name` is replaced by the WPAR's name): the console
 * proxies `POST /api/wpars/:name/move` (`{ peer, waitSec? }`) to it and the page shows a **Move** button.
 */
const MOVE_ROUTE: string | null = '/v1/wpars/:name/move';

/** What the console serves. */
export interface ConsoleOptions {
  readonly address: HttpAddress;
  readonly layout: HomeLayout;
  /** The daemon's control API: actions are injected into it. */
  readonly control: FastifyInstance;
  readonly manager: WparManager;
  readonly journal: Journal;
  /** The cgroup hierarchy the runtime uses (per-WPAR use), or null. */
  readonly cgroup: CgroupSupport | null;
  readonly log: (line: string) => void;
  /** Seconds between pushes of every running WPAR's use to open pages (default 2). */
  readonly usageEverySec?: number;
  /** In a cluster (`wpard --cluster`): this host's name. Pages then show every host's WPARs and the hosts. */
  readonly cluster?: { readonly host: string } | undefined;
  /** Seconds between reads of the other hosts while a page is open (default 2). */
  readonly clusterEverySec?: number;
}

/** A running console. */
export interface ConsoleServer {
  /** `http://HOST:PORT` as it listens (the port chosen when 0 was asked for). */
  readonly origin: string;
  /** The home's console token. */
  readonly token: string;
  /** `origin/?token=TOKEN`: open it once to log a browser in. */
  readonly loginUrl: string;
  /** Stops serving (open event streams end) and stops the metrics' event-loop monitor. */
  close(): Promise<void>;
}

/** One row of the console's table: the WPAR as `lswpar --json` shows it, and its use now. */
export type ConsoleRow = WparInfo & { readonly usage: Usage | null };

interface Asset { readonly type: string; readonly body: Buffer; readonly gzip: Buffer }

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};
const UNAUTHORIZED: ApiError = {
  error: { code: 'EPERM', message: 'the console needs its token: open the address wpard printed (http://ADDR:PORT/?token=...) or send Authorization: Bearer TOKEN' },
};

/** Starts the console on `options.address`. Refuses (with the errno) if it cannot listen. */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const { manager, journal, control, layout } = options;
  const token = consoleToken(layout.home, options.log);
  const assets = loadAssets();
  const self = options.cluster?.host;
  const row = (info: WparInfo): ConsoleRow => ({
    ...info, ...(self !== undefined && { host: self }), usage: info.pid === null ? null : readUsage(options.cgroup, info.pid),
  });
  const metrics = new ConsoleMetrics({ list: () => manager.list(), usage: (w) => readUsage(options.cgroup, w.pid) });
  const stopMetrics = journal.follow((e) => metrics.observe(e));
  const streams = new Set<ServerResponse>();
  const feed = new Feed(manager, row, options.usageEverySec ?? 2);
  const stopFeed = journal.follow((e) => feed.event(e));
  const clusterView = self === undefined ? null : new ClusterView({
    control, host: self, everyMs: (options.clusterEverySec ?? 2) * 1000,
    active: () => feed.size > 0, changed: (snapshot) => feed.cluster(snapshot),
  });

  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 64 * 1024 });
  let access: Access | null = null; // made once the port is known (the cookie's name carries it)

  app.addHook('onRequest', async (req, reply) => {
    const a = access!;
    const path = req.url.split('?', 1)[0];
    if (path === '/' && req.method === 'GET' && typeof (req.query as { token?: unknown }).token === 'string') return; // the login
    const how = a.authenticate(req.headers);
    if (how === null) return reply.status(401).headers(SECURITY_HEADERS).header('www-authenticate', 'Bearer realm="corral console"').send(UNAUTHORIZED);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const why = refuseChange(how, req.headers);
      if (why !== null) return reply.status(403).headers(SECURITY_HEADERS).send({ error: { code: 'EPERM', message: why } } satisfies ApiError);
    }
  });
  app.addHook('onSend', async (_req, reply) => { reply.headers(SECURITY_HEADERS); });
  app.setErrorHandler((err, _req, reply) => {
    const e = err as Error & { statusCode?: number };
    const code = err instanceof WparError ? err.code : (e.statusCode ?? 500) < 500 ? 'EINVAL' : 'EIO';
    void reply.status(err instanceof WparError ? statusFor(code) : (e.statusCode ?? 500)).send({ error: { code, message: e.message } } satisfies ApiError);
  });

  // The page. `/?token=` logs a browser in and sends it on to `/`, so the token leaves the address bar.
  app.get<{ Querystring: { token?: string } }>('/', async (req, reply) => {
    if (req.query.token !== undefined) {
      if (!access!.isToken(req.query.token)) return reply.status(401).send(UNAUTHORIZED);
      return reply.status(303).header('set-cookie', access!.sessionCookie()).header('location', '/').send();
    }
    return sendAsset(req, reply, assets.get('index.html')!);
  });
  for (const [file, asset] of assets) if (file !== 'index.html') app.get(`/${file}`, (req, reply) => sendAsset(req, reply, asset));

  // Reads.
  app.get('/api/wpars', async () => manager.list().map(row));
  app.get<{ Params: { name: string } }>('/api/wpars/:name', async (req) => row(manager.info(checkName(req.params.name))));
  app.get<{ Params: { name: string } }>('/api/wpars/:name/events', async (req) => {
    const name = checkName(req.params.name);
    manager.info(name);
    return journal.recent(EVENT_HISTORY).filter((e) => e.name === name).slice(-500);
  });
  app.get('/api/system', async (_req, reply) => relay(reply, await control.inject({ method: 'GET', url: '/v1/system' })));
  app.get('/api/hosts', async (_req, reply) => relay(reply, await control.inject({ method: 'GET', url: '/v1/hosts' })));

  // The live stream: a snapshot, then every journal event with the fresh row of the WPAR it is about.
  app.get('/api/events', (req, reply) => {
    const send = sse(req, reply, streams);
    // Snapshot and subscription in one synchronous step: no event can fall between them.
    send('snapshot', { wpars: manager.list().map(row), capabilities: { move: MOVE_ROUTE !== null }, home: layout.home, cluster: clusterView?.snapshot ?? null });
    feed.add(send);
    void clusterView?.refresh();
    reply.raw.on('close', () => feed.delete(send));
  });

  // One WPAR's console log: its tail, then what it writes, until the page goes away.
  app.get<{ Params: { name: string } }>('/api/wpars/:name/logs', (req, reply) => {
    const name = checkName(req.params.name);
    manager.info(name); // ENOENT before the stream starts
    const send = sse(req, reply, streams);
    const ac = new AbortController();
    reply.raw.on('close', () => ac.abort());
    void (async () => {
      try {
        for await (const text of followLog(layout.consoleLog(name), { signal: ac.signal, lines: 200 })) send('log', { text });
      } catch (err) {
        send('failed', { error: { code: err instanceof WparError ? err.code : 'EIO', message: (err as Error).message } });
      }
    })();
  });

  // Actions: the control API's own routes, with only the fields each one takes.
  const act = (method: HTTPMethods, url: (name: string) => string, fields: readonly string[]) =>
    async (req: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
      const name = checkName(req.params.name);
      const payload = pick(req.body, fields);
      return relay(reply, await control.inject({
        method, url: url(encodeURIComponent(name)),
        ...(payload !== undefined && { payload, headers: { 'content-type': 'application/json' } }),
      }));
    };
  app.post('/api/wpars/:name/start', act('POST', (n) => `/v1/wpars/${n}/start`, []));
  app.post('/api/wpars/:name/stop', act('POST', (n) => `/v1/wpars/${n}/stop`, ['force', 'timeoutSec']));
  // A checkpoint streams its progress (the control API's ndjson form): every open page is told how
  // far the image is, and the page that asked gets the result or the error as the command would.
  app.post<{ Params: { name: string } }>('/api/wpars/:name/checkpoint', async (req, reply) => {
    const name = checkName(req.params.name);
    const res = await control.inject({
      method: 'POST', url: `/v1/wpars/${encodeURIComponent(name)}/checkpoint`, payload: pick(req.body, ['dir', 'waitSec', 'kill']),
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' }, payloadAsStream: true,
    });
    let text = '';
    let last: { type: string; result?: unknown; error?: { code: string; message: string } } | null = null;
    for await (const chunk of res.stream()) {
      text += String(chunk);
      let nl: number;
      while (res.statusCode === 200 && (nl = text.indexOf('\n')) >= 0) {
        const line = JSON.parse(text.slice(0, nl)) as { type: string; bytesDone?: number; bytesTotal?: number };
        text = text.slice(nl + 1);
        if (line.type === 'progress') feed.progress(name, line.bytesDone ?? 0, line.bytesTotal ?? 0);
        else last = line;
      }
    }
    if (res.statusCode !== 200) return relay(reply, { statusCode: res.statusCode, body: text });
    if (last?.type === 'result') return reply.type('application/json; charset=utf-8').send(last.result);
    const error = last?.error ?? { code: 'EIO', message: `${name}: the checkpoint ended without a result` };
    return reply.status(statusFor(error.code)).send({ error } satisfies ApiError);
  });
  app.post('/api/restart', async (req, reply) => relay(reply, await control.inject({
    method: 'POST', url: '/v1/restart', payload: pick(req.body, ['dir', 'name', 'newName']) ?? {}, headers: { 'content-type': 'application/json' },
  })));
  app.post<{ Params: { name: string } }>('/api/wpars/:name/move', async (req, reply) => {
    if (MOVE_ROUTE === null) throw new WparError('EINVAL', 'move is not available in this daemon yet');
    return act('POST', (n) => MOVE_ROUTE.replace(':name', n), Object.keys(req.body ?? {}))(req, reply);
  });

  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.text()));

  try {
    await app.listen({ host: options.address.host, port: options.address.port });
  } catch (err) {
    stopMetrics();
    stopFeed();
    feed.close();
    clusterView?.close();
    metrics[Symbol.dispose]();
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new WparError(code === 'EACCES' ? 'EPERM' : code === 'EADDRINUSE' ? 'EBUSY' : 'EINVAL',
      `cannot serve the console on ${options.address.host}:${options.address.port}: ${(err as Error).message}`, { cause: err });
  }
  const bound = app.server.address() as AddressInfo;
  access = new Access(token, bound.port);
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const origin = `http://${host}:${bound.port}`;
  if (!isLoopback(options.address.host)) options.log(`the console on ${origin} is plain HTTP reachable from other machines: put it behind a TLS proxy`);
  return {
    origin, token, loginUrl: `${origin}/?token=${token}`,
    close: async () => {
      stopMetrics();
      stopFeed();
      feed.close();
      clusterView?.close();
      metrics[Symbol.dispose]();
      for (const res of streams) res.end();
      await app.close();
    },
  };
}

type Sender = (event: string, data: unknown) => void;

/**
 * The open pages' live feed. Each journal event goes out once with the row of the WPAR it is about.
 * A WPAR left transitional or frozen by its last event settles without one (a start becomes `A`
 * when its activation returns, after the last event of the start): such rows are re-read every
 * 100 ms until they settle, and sent again when they change. Every running WPAR's use is pushed
 * every few seconds.
 */
class Feed {
  readonly #clients = new Set<Sender>();
  readonly #manager: WparManager;
  readonly #row: (info: WparInfo) => ConsoleRow;
  /** Unsettled WPARs → the key of the row last sent. */
  readonly #unsettled = new Map<string, string>();
  #settleTimer: NodeJS.Timeout | null = null;
  readonly #usageTimer: NodeJS.Timeout;

  constructor(manager: WparManager, row: (info: WparInfo) => ConsoleRow, usageEverySec: number) {
    this.#manager = manager;
    this.#row = row;
    this.#usageTimer = setInterval(() => this.#usage(), usageEverySec * 1000);
    this.#usageTimer.unref();
  }

  add(client: Sender): void { this.#clients.add(client); }
  /** How many pages are open. */
  get size(): number { return this.#clients.size; }
  /** The cluster changed (other hosts' WPARs, the hosts). */
  cluster(snapshot: ClusterSnapshot): void { this.#broadcast('cluster', snapshot); }
  delete(client: Sender): void { this.#clients.delete(client); }

  /** One journal event. */
  event(event: DaemonEvent): void {
    if (this.#clients.size === 0) return;
    const name = typeof event.name === 'string' ? event.name : null;
    const wpar = name !== null && this.#manager.has(name) ? this.#row(this.#manager.info(name)) : null;
    this.#broadcast('event', { event, ...(name !== null && { name, wpar }) });
    if (wpar) this.#watch(wpar);
  }

  /** How far a checkpoint's image is. */
  progress(name: string, bytesDone: number, bytesTotal: number): void {
    this.#broadcast('progress', { name, bytesDone, bytesTotal });
  }

  close(): void {
    clearInterval(this.#usageTimer);
    if (this.#settleTimer) clearInterval(this.#settleTimer);
  }

  #watch(wpar: ConsoleRow): void {
    if (wpar.state !== 'T' && wpar.state !== 'F') { this.#unsettled.delete(wpar.name); return; }
    this.#unsettled.set(wpar.name, key(wpar));
    this.#settleTimer ??= setInterval(() => this.#settle(), 100);
  }

  #settle(): void {
    for (const [name, last] of this.#unsettled) {
      const wpar = this.#manager.has(name) ? this.#row(this.#manager.info(name)) : null;
      if (wpar === null) { this.#unsettled.delete(name); continue; }
      if (key(wpar) !== last) this.#broadcast('row', { name, wpar });
      this.#watch(wpar);
    }
    if (this.#unsettled.size === 0 || this.#clients.size === 0) {
      this.#unsettled.clear();
      clearInterval(this.#settleTimer!);
      this.#settleTimer = null;
    }
  }

  #usage(): void {
    if (this.#clients.size === 0) return;
    const usage: Record<string, Usage> = {};
    for (const w of this.#manager.list()) if (w.pid !== null) usage[w.name] = this.#row(w).usage!;
    this.#broadcast('usage', usage);
  }

  #broadcast(type: string, data: unknown): void {
    for (const c of this.#clients) c(type, data);
  }
}

/** What a page shows of a row's state (a change of it is sent). */
function key(w: ConsoleRow): string {
  return `${w.state}/${w.cid}/${w.phase}/${w.denials.length}`;
}

/** Starts a server-sent-events response; returns its sender. Headers go out at once. */
function sse(req: FastifyRequest, reply: FastifyReply, streams: Set<ServerResponse>): Sender {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  streams.add(res);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  req.raw.socket.setNoDelay(true);
  res.on('close', () => { clearInterval(keepAlive); streams.delete(res); });
  return (event, data) => { if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`); };
}

/** Sends the control API's answer on as it is (status and JSON body: the same errors as the commands). */
function relay(reply: FastifyReply, res: { statusCode: number; body: string }): FastifyReply {
  return reply.status(res.statusCode).type('application/json; charset=utf-8').send(res.body === '' ? 'null' : res.body);
}

/** Only `fields` of a JSON object body; undefined for no fields. */
function pick(body: unknown, fields: readonly string[]): Record<string, unknown> | undefined {
  if (fields.length === 0) return undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new WparError('EINVAL', 'the request body must be a JSON object');
  const b = body as Record<string, unknown>;
  return Object.fromEntries(fields.filter((f) => b[f] !== undefined).map((f) => [f, b[f]]));
}

function sendAsset(req: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply {
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  reply.type(asset.type).header('vary', 'accept-encoding');
  if (gzip) reply.header('content-encoding', 'gzip');
  return reply.send(gzip ? asset.gzip : asset.body);
}

const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8',
};

/** The built page (`npm run build` puts it in `dist/console/ui`), read once and gzipped once. */
function loadAssets(): Map<string, Asset> {
  const here = new URL('./ui/', import.meta.url);
  const dir = existsSync(new URL('app.js', here)) ? here : new URL('../../dist/console/ui/', import.meta.url);
  const assets = new Map<string, Asset>();
  for (const file of ['index.html', 'app.js', 'style.css']) {
    let body: Buffer;
    try {
      body = readFileSync(new URL(file, dir));
    } catch (err) {
      throw new WparError('ENOENT', `the console's page is not built (${file} missing in ${dir.pathname}): run npm run build`, { cause: err });
    }
    assets.set(file, { type: TYPES[file.split('.').pop()!]!, body, gzip: gzipSync(body, { level: 9 }) });
  }
  return assets;
}
