/**
 * The control API (R1): HTTP/1.1 + JSON on the Unix socket `HOME/run/wpard.sock`, mode 0600 from the
 * moment it exists (created under a 0177 umask inside a 0700 directory). Routes: `protocol.ts`.
 * @module
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { WparError } from '../kernel/errno.ts';
import { followLog, readLogTail } from '../runtime/console-log.ts';
import { checkDefinition, checkName } from './definition-check.ts';
import type { HomeLayout } from './home.ts';
import type { Journal } from './journal.ts';
import {
  statusFor, type ApiError, type CheckpointRequest, type CheckpointResult, type CreateRequest, type DaemonEvent,
  type RestartRequest, type StopRequest, type SystemInfo, type WparInfo,
} from './protocol.ts';
import type { WparManager } from './wpars.ts';

/** The largest request body the control API reads: 1 MiB. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** What the server serves. */
export interface ServerOptions {
  readonly layout: HomeLayout;
  readonly manager: WparManager;
  readonly journal: Journal;
  readonly system: () => SystemInfo;
  readonly checkpoint?: (name: string, request: CheckpointRequest, run: { onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void; signal?: AbortSignal }) => Promise<CheckpointResult>;
  readonly restart?: (request: RestartRequest) => Promise<WparInfo>;
  /**
   * In a cluster (`src/cluster/service.ts`): runs before every route; an answer it gives is sent as
   * the reply (the request was served by the WPAR's host), undefined lets the route run here.
   */
  readonly forward?: (req: FastifyRequest) => Promise<{ status: number; contentType: string; body: unknown } | undefined>;
  /** Adds more routes (the peer service's: identity, peers, moves). */
  readonly routes?: (app: FastifyInstance) => void;
  /** Adds what others know about a listed WPAR (its last scheduled checkpoint, C5). */
  readonly listed?: (w: WparInfo) => WparInfo;
}

/** Starts the control server on the home's socket. */
export async function startServer(options: ServerOptions): Promise<FastifyInstance> {
  const { layout, manager, journal } = options;
  // Bounded memory: a request body is at most MAX_BODY_BYTES (every request Corral sends is far
  // smaller), and the HTTP server's own limits bound headers (16 KiB) and their time.
  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: MAX_BODY_BYTES });

  app.setErrorHandler((err, _req, reply) => {
    const e = err as Error & { validation?: unknown; statusCode?: number };
    // fastify's own refusals (413 body too large, 415 not JSON, 400 bad JSON) are the client's
    // errors: answered with their status in the API's error shape, never as a 500 EIO.
    const client = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : undefined;
    const code = err instanceof WparError ? err.code : client === 413 ? 'EMSGSIZE' : e.validation || client !== undefined ? 'EINVAL' : 'EIO';
    const body: ApiError = { error: { code, message: client === 415 ? `${e.message}: send application/json` : e.message } };
    void reply.status(err instanceof WparError || client === undefined ? statusFor(code) : client).send(body);
  });

  const forward = options.forward;
  if (forward) {
    app.addHook('preHandler', async (req, reply) => {
      const answer = await forward(req);
      if (answer === undefined) return;
      if (answer.status === 204) return reply.status(204).send();
      // A stream relayed from the WPAR's host: sent as it comes, ended when the client goes away.
      if (answer.body instanceof Readable) return follow(reply, answer.contentType, answer.body, answer.status);
      return reply.status(answer.status).type(answer.contentType).send(answer.body);
    });
  }

  app.get('/v1/system', async () => options.system());

  app.get<{ Querystring: { name?: string | string[] } }>('/v1/wpars', async (req) => {
    const names = req.query.name === undefined ? [] : ([] as string[]).concat(req.query.name);
    const listed = manager.list(names.map(checkName));
    return options.listed ? listed.map(options.listed) : listed;
  });

  app.post<{ Body: CreateRequest }>('/v1/wpars', async (req, reply) => {
    const body = req.body ?? ({} as CreateRequest);
    if (body.host !== undefined && !options.forward) throw new WparError('EINVAL', 'a host is chosen only in a cluster (wpard --cluster)');
    const definition = checkDefinition(body.definition);
    await manager.create(definition, body.transient === true);
    // A WPAR this request defined and that then fails to start is removed again (nothing is left
    // behind by a mistyped command), unless the client asked to keep it (state B, with the reason).
    if (body.start) {
      try {
        await manager.start(definition.name);
      } catch (err) {
        if (body.keep !== true && manager.has(definition.name)) await manager.remove(definition.name, { force: true }).catch(() => {});
        throw err;
      }
    }
    return reply.status(201).send(manager.has(definition.name) ? manager.info(definition.name) : null);
  });

  app.delete<{ Params: { name: string }; Querystring: { force?: string } }>('/v1/wpars/:name', async (req, reply) => {
    await manager.remove(checkName(req.params.name), { force: truthy(req.query.force) });
    return reply.status(204).send();
  });

  app.post<{ Params: { name: string } }>('/v1/wpars/:name/start', async (req) => manager.start(checkName(req.params.name)));

  app.post<{ Params: { name: string }; Body: StopRequest | undefined }>('/v1/wpars/:name/stop', async (req) => {
    const body = req.body ?? {};
    if (body.timeoutSec !== undefined && typeof body.timeoutSec !== 'number') throw new WparError('EINVAL', 'timeoutSec must be a number');
    return manager.stop(checkName(req.params.name), { force: body.force === true, ...(body.timeoutSec !== undefined && { timeoutSec: body.timeoutSec }) });
  });

  app.get<{ Params: { name: string } }>('/v1/wpars/:name/wait', async (req) => manager.wait(checkName(req.params.name)));

  app.get<{ Params: { name: string }; Querystring: { follow?: string; tail?: string; next?: string } }>('/v1/wpars/:name/logs', async (req, reply) => {
    const name = checkName(req.params.name);
    manager.info(name); // ENOENT before streaming anything
    const lines = req.query.tail === undefined ? undefined : Number(req.query.tail);
    if (lines !== undefined && !(Number.isInteger(lines) && lines >= 0)) throw new WparError('EINVAL', 'tail must be a number of lines');
    const path = layout.consoleLog(name);
    if (!truthy(req.query.follow)) {
      return reply.type('text/plain; charset=utf-8').send(await readLogTail(path, lines === undefined ? {} : { lines }));
    }
    const ac = new AbortController();
    req.raw.on('close', () => ac.abort());
    // Follow this run to its end; with next=1, the next run (not started yet) to its end, so a
    // client can subscribe before it starts the WPAR and miss nothing (wparexec).
    if (truthy(req.query.next)) manager.nextExit(name).then(() => ac.abort(), () => ac.abort());
    else if (manager.running(name)) manager.wait(name).then(() => ac.abort(), () => ac.abort());
    else ac.abort();
    return follow(reply, 'text/plain; charset=utf-8', Readable.from(followLog(path, { signal: ac.signal, ...(lines !== undefined && { lines }) })));
  });

  app.get<{ Querystring: { follow?: string; tail?: string } }>('/v1/events', async (req, reply) => {
    const tail = req.query.tail === undefined ? (truthy(req.query.follow) ? 0 : 100) : Number(req.query.tail);
    if (!(Number.isInteger(tail) && tail >= 0)) throw new WparError('EINVAL', 'tail must be a number of events');
    const recent = tail > 0 ? journal.recent(tail) : [];
    if (!truthy(req.query.follow)) return ndjson(reply, Readable.from(recent.map(line)));
    const stream = new Readable({ read() {} });
    for (const e of recent) stream.push(line(e));
    const stop = journal.follow((e) => stream.push(line(e)));
    req.raw.on('close', () => { stop(); stream.push(null); });
    return follow(reply, 'application/x-ndjson', stream);
  });

  // A checkpoint is abandoned if its client goes away (a killed chkptwpar leaves no image). With
  // `accept: application/x-ndjson` it streams `{progress}` lines, then `{result}` or `{error}`.
  app.post<{ Params: { name: string }; Body: CheckpointRequest }>('/v1/wpars/:name/checkpoint', async (req, reply) => {
    if (!options.checkpoint) throw new WparError('EINVAL', 'checkpoint is not available in this daemon');
    const name = checkName(req.params.name);
    const body = req.body ?? ({} as CheckpointRequest);
    const gone = new AbortController();
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) gone.abort(new WparError('EINTR', `${name}: checkpoint abandoned: the client went away`)); });
    if (!(req.headers.accept ?? '').includes('application/x-ndjson')) return options.checkpoint(name, body, { signal: gone.signal });
    const stream = new Readable({ read() {} });
    let last = 0;
    const onProgress = (p: { bytesDone: number; bytesTotal: number }): void => {
      const now = Date.now();
      if (now - last < 100 && p.bytesDone < p.bytesTotal) return; // at most ten lines a second
      last = now;
      stream.push(line({ type: 'progress', time: now, ...p }));
    };
    options.checkpoint(name, body, { onProgress, signal: gone.signal }).then(
      (result) => { stream.push(line({ type: 'result', time: Date.now(), result })); stream.push(null); },
      (err: Error) => {
        const code = err instanceof WparError ? err.code : 'EIO';
        stream.push(line({ type: 'error', time: Date.now(), error: { code, message: err.message } }));
        stream.push(null);
      },
    );
    return follow(reply, 'application/x-ndjson', stream);
  });

  app.post<{ Body: RestartRequest }>('/v1/restart', async (req, reply) => {
    if (!options.restart) throw new WparError('EINVAL', 'restart is not available in this daemon');
    return reply.status(201).send(await options.restart(req.body ?? ({} as RestartRequest)));
  });

  options.routes?.(app);

  // The socket is private from the first moment: a 0700 directory, created under a 0177 umask.
  mkdirSync(layout.runDir, { recursive: true, mode: 0o700 });
  chmodSync(layout.runDir, 0o700);
  const umask = process.umask(0o177);
  try {
    await app.listen({ path: layout.socket });
  } finally {
    process.umask(umask);
  }
  chmodSync(layout.socket, 0o600);
  return app;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && v !== '0' && v !== 'false';
}

function line(e: DaemonEvent): string {
  return JSON.stringify(e) + '\n';
}

function ndjson(reply: FastifyReply, stream: Readable): FastifyReply {
  return reply.type('application/x-ndjson').send(stream);
}

/**
 * Streams a follow response with its headers sent at once: a follower knows it is subscribed before
 * the first line exists (Node would otherwise hold the headers back until the first write).
 */
function follow(reply: FastifyReply, type: string, stream: Readable, status = 200): FastifyReply {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache' });
  res.flushHeaders();
  stream.pipe(res);
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  // A client gone before the stream was ready (a relay's head took a while): its 'close' has passed.
  if (res.destroyed || reply.request.raw.socket.destroyed) stream.destroy();
  return reply;
}
