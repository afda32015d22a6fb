/**
 * The console's page: one script, no framework. It opens the daemon's event stream
 * (`/api/events`), renders the snapshot as a table, and from then on updates only the row an event
 * is about. Actions POST to `/api/...` (same origin, JSON) and show the daemon's error in words.
 * @module
 */

/** A denial as the daemon shows it. */
interface Denial { readonly owner: string; readonly reason: string; readonly since: number }
/** How a WPAR last ended. */
interface Exit { readonly code: number | null; readonly signal: string | null; readonly at: number; readonly reason: string }
/** Use now, from the cgroup. */
interface Usage { readonly memoryBytes: number | null; readonly cpuSeconds: number | null; readonly procs: number | null }
/** One row: `lswpar --json`'s object and the use now. */
interface Row {
  readonly name: string; readonly state: 'D' | 'T' | 'A' | 'F' | 'B' | 'M'; readonly cid: number | null; readonly phase: string | null;
  readonly checkpointable: boolean; readonly denials: readonly Denial[]; readonly isolation: string | null; readonly pid: number | null;
  readonly lastExit: Exit | null; readonly definition: { readonly limits: { memoryBytes?: number; cpuPercent?: number; procs?: number } } & Record<string, unknown>;
  readonly usage: Usage | null;
  /** In a cluster: the host it is on. */
  readonly host?: string;
}
/** One host of a cluster (`wpar hosts --json`). */
interface HostRow { readonly name: string; readonly address: string; readonly state: string; readonly wpars: number; readonly ttl: number }
/** What the daemon tells of its cluster: the hosts and the other hosts' WPARs. */
interface ClusterSnapshot { readonly host: string; readonly hosts: readonly HostRow[]; readonly remote: readonly Row[]; readonly problem: string | null }
/** A journal event. */
interface DaemonEvent { readonly type: string; readonly time: number; readonly name?: string; readonly [k: string]: unknown }
interface ApiError { readonly error: { readonly code: string; readonly message: string } }

/** Measurements the tests and the bench read (`window.corralStats`). */
const stats = {
  /** Milliseconds from navigation start to the first table on screen. */
  firstRenderMs: -1,
  /** Milliseconds the first render itself took. */
  firstRenderOnlyMs: -1,
  /** Rows in the first render. */
  firstRenderRows: 0,
  /** Checkpoint progress messages received: `{name, bytesDone, bytesTotal}`. */
  progress: [] as { name: string; bytesDone: number; bytesTotal: number }[],
  /** For each event received: milliseconds from the daemon journaling it to the page having applied it. */
  eventLatencies: [] as number[],
};
(window as unknown as { corralStats: typeof stats }).corralStats = stats;

const WORDS: Record<Row['state'], string> = { D: 'defined', T: 'transitional', A: 'active', F: 'frozen', B: 'broken', M: 'moving' };
const $ = <T extends Element>(sel: string): T => document.querySelector<T>(sel)!;
const rows = new Map<string, Row>();
/** The table rows on screen: the list's, and the one on the WPAR page. */
const listRows = new Map<string, HTMLTableRowElement>();
let pageRow: HTMLTableRowElement | null = null;
const template = $<HTMLTemplateElement>('#row');
let moveEnabled = false;
/** In a cluster: this host's name, the hosts, and which rows are other hosts' (read every few seconds). */
let cluster: ClusterSnapshot | null = null;
const remoteNames = new Set<string>();
const elsewhere = (r: Row): boolean => cluster !== null && r.host !== undefined && r.host !== cluster.host;
let current: string | null = null;
let logStream: EventSource | null = null;
/** Checkpoints under way from this console: WPAR → percent of the image written. */
const writing = new Map<string, number>();

// ---------- formatting ----------
const time = (ms: number): string => new Date(ms).toLocaleTimeString([], { hour12: false });
function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}
function memory(r: Row): string {
  const limit = r.definition.limits.memoryBytes;
  const used = r.usage?.memoryBytes;
  if (used === null || used === undefined) return limit === undefined ? '—' : `limit ${bytes(limit)}`;
  return limit === undefined ? bytes(used) : `${bytes(used)} / ${bytes(limit)}`;
}
function cpu(r: Row): string {
  const limit = r.definition.limits.cpuPercent;
  const used = r.usage?.cpuSeconds;
  const u = used === null || used === undefined ? '—' : `${used.toFixed(1)} s`;
  return limit === undefined ? u : `${u} (limit ${limit}%)`;
}
function procs(r: Row): string {
  const limit = r.definition.limits.procs;
  const used = r.usage?.procs;
  const u = used === null || used === undefined ? '—' : String(used);
  return limit === undefined ? u : `${u} / ${limit}`;
}
function exit(e: Exit | null): string {
  return e === null ? '—' : `${e.reason} (${time(e.at)})`;
}
function describe(e: DaemonEvent): string {
  const skip = new Set(['type', 'time', 'name', 'cid']);
  const rest = Object.entries(e).filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${k === 'since' && typeof v === 'number' ? time(v) : typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  return `${e.type}${e.name ? ` ${e.name}` : ''}${rest ? ` ${rest}` : ''}`;
}

// ---------- rendering ----------
function makeRow(r: Row): HTMLTableRowElement {
  const tr = (template.content.firstElementChild as HTMLTableRowElement).cloneNode(true) as HTMLTableRowElement;
  tr.dataset.name = r.name;
  const a = tr.querySelector('a')!;
  a.textContent = r.name;
  a.href = `#/wpar/${encodeURIComponent(r.name)}`;
  fill(tr, r);
  return tr;
}
function set(cell: Element, text: string): void {
  if (cell.textContent !== text) cell.textContent = text;
}
function fill(tr: HTMLTableRowElement, r: Row): void {
  const c = tr.cells;
  const state = c[1]!;
  if (tr.dataset.state !== r.state) {
    tr.dataset.state = r.state;
    state.className = `state s-${r.state}`;
    state.replaceChildren(Object.assign(document.createElement('b'), { textContent: r.state }), WORDS[r.state]);
  }
  set(c[2]!, r.cid === null ? '—' : String(r.cid));
  const pct = writing.get(r.name);
  set(c[3]!, `${r.phase ?? '—'}${pct === undefined ? '' : ` · image ${pct}%`}`);
  const denials = r.denials.map((d) => `${d.owner} "${d.reason}" since ${time(d.since)}`).join('\n');
  if (c[4]!.dataset.v !== denials) {
    c[4]!.dataset.v = denials;
    c[4]!.replaceChildren(...(r.denials.length === 0 ? ['0'] : r.denials.map((d) => Object.assign(document.createElement('div'), { textContent: `${d.owner} "${d.reason}" since ${time(d.since)}` }))));
  }
  set(c[5]!, memory(r));
  set(c[6]!, cpu(r));
  set(c[7]!, procs(r));
  set(c[8]!, r.isolation ?? '—');
  set(c[9]!, exit(r.lastExit));
  set(c[10]!, r.host ?? '—');
  const [start, stop, chk] = c[11]!.querySelectorAll('button');
  start!.disabled = !(r.state === 'D' || r.state === 'B');
  stop!.disabled = r.state !== 'A';
  // A checkpoint's image directory is its host's: checkpoint it from that host's console.
  chk!.disabled = !(r.state === 'A' && r.checkpointable) || elsewhere(r);
  if (moveEnabled && !c[11]!.querySelector('[data-act=move]')) {
    // Shown only when the daemon has a move route (MOVE_ROUTE in src/console/server.ts).
    const move = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Move' });
    move.dataset['act'] = 'move'; // dataset itself is read-only
    c[11]!.append(' ', move);
  }
  const mv = c[11]!.querySelector<HTMLButtonElement>('[data-act=move]');
  if (mv) mv.disabled = !(r.state === 'A' && r.checkpointable);
}

function renderAll(list: readonly Row[]): void {
  const t0 = performance.now();
  rows.clear();
  listRows.clear();
  const body = $<HTMLTableSectionElement>('#wpars tbody');
  const frag = document.createDocumentFragment();
  for (const r of list) {
    rows.set(r.name, r);
    const tr = makeRow(r);
    listRows.set(r.name, tr);
    frag.append(tr);
  }
  body.replaceChildren(frag);
  set($('#count'), `(${list.length})`);
  if (stats.firstRenderMs < 0) {
    stats.firstRenderOnlyMs = performance.now() - t0;
    stats.firstRenderMs = performance.now();
    stats.firstRenderRows = list.length;
  }
  if (current !== null) showWpar(current, false);
}

/** Applies one WPAR's new row (or its removal, with null). */
function update(name: string, r: Row | null): void {
  const tr = listRows.get(name);
  if (r === null) {
    rows.delete(name);
    tr?.remove();
    listRows.delete(name);
  } else {
    rows.set(name, r);
    if (tr) fill(tr, r);
    else {
      const fresh = makeRow(r);
      listRows.set(name, fresh);
      // Keep the table sorted by name, as lswpar is.
      const after = [...listRows.keys()].sort().find((n) => n > name);
      $<HTMLTableSectionElement>('#wpars tbody').insertBefore(fresh, after === undefined ? null : listRows.get(after) ?? null);
    }
  }
  set($('#count'), `(${rows.size})`);
  if (current === name) {
    if (r && pageRow) fill(pageRow, r);
    else if (!r) showWpar(name, false);
  }
}

function feed(list: HTMLOListElement, e: DaemonEvent, max: number): void {
  const li = document.createElement('li');
  li.append(Object.assign(document.createElement('time'), { textContent: time(e.time) }), describe(e));
  list.prepend(li);
  while (list.childElementCount > max) list.lastElementChild!.remove();
}

function renderHosts(c: ClusterSnapshot): void {
  document.body.classList.add('cluster');
  $<HTMLElement>('#hosts-panel').hidden = false;
  const body = $<HTMLTableSectionElement>('#hosts tbody');
  body.replaceChildren(...c.hosts.map((h) => {
    const tr = document.createElement('tr');
    tr.dataset.host = h.name;
    const name = Object.assign(document.createElement('th'), { scope: 'row', textContent: h.name + (h.name === c.host ? ' (this host)' : '') });
    const cells = [h.address, h.state, String(h.wpars), h.state === 'lost' ? '—' : `${h.ttl} s`]
      .map((t) => Object.assign(document.createElement('td'), { textContent: t }));
    cells[1]!.className = `h-${h.state}`;
    tr.append(name, ...cells);
    return tr;
  }));
  const problem = $<HTMLElement>('#cluster-problem');
  problem.hidden = c.problem === null;
  set(problem, c.problem === null ? '' : `Not every host answered: ${c.problem}`);
}

/** A new read of the cluster: the hosts, and the other hosts' rows (added, changed, gone). */
function applyCluster(c: ClusterSnapshot): void {
  cluster = c;
  renderHosts(c);
  const now = new Set(c.remote.map((r) => r.name));
  for (const r of c.remote) update(r.name, r);
  for (const name of remoteNames) if (!now.has(name) && rows.get(name)?.host !== c.host) update(name, null);
  remoteNames.clear();
  for (const n of now) remoteNames.add(n);
}

// ---------- the WPAR page ----------
function route(): void {
  const m = /^#\/wpar\/(.+)$/.exec(location.hash);
  const name = m ? decodeURIComponent(m[1]!) : null;
  if (name === current) return;
  current = name;
  logStream?.close();
  logStream = null;
  $<HTMLElement>('#list-view').hidden = name !== null;
  $<HTMLElement>('#wpar-view').hidden = name === null;
  if (name !== null) showWpar(name, true);
}

function showWpar(name: string, fresh: boolean): void {
  const r = rows.get(name);
  set($('#wpar-title'), r ? name : `${name} (no such WPAR)`);
  document.title = `${name} — Corral console`;
  const body = $<HTMLTableSectionElement>('#wpar-row tbody');
  if (!r) { body.replaceChildren(); pageRow = null; return; }
  pageRow = makeRow(r);
  body.replaceChildren(pageRow);
  set($('#definition'), JSON.stringify(r.definition, null, 2));
  const away = $<HTMLElement>('#wpar-elsewhere');
  away.hidden = !elsewhere(r);
  set(away, elsewhere(r) ? `On host ${r.host}: its console log, events and checkpoints are that host's (open its console).` : '');
  if (!fresh || elsewhere(r)) return;
  $('#events').replaceChildren();
  $('#checkpoints tbody').replaceChildren();
  $('#log').textContent = '';
  void fetch(`/api/wpars/${encodeURIComponent(name)}/events`).then(async (res) => {
    if (!res.ok) return;
    for (const e of (await res.json()) as DaemonEvent[]) wparEvent(e);
  });
  logStream = new EventSource(`/api/wpars/${encodeURIComponent(name)}/logs`);
  logStream.addEventListener('log', (m) => {
    const pre = $<HTMLPreElement>('#log');
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append((JSON.parse((m as MessageEvent<string>).data) as { text: string }).text);
    // Keep the page light: the last 200 KB of output.
    if ((pre.textContent?.length ?? 0) > 200_000) pre.textContent = pre.textContent!.slice(-150_000);
    if (stick) pre.scrollTop = pre.scrollHeight;
  });
}

function wparEvent(e: DaemonEvent): void {
  feed($('#events'), e, 500);
  if (e.type === 'checkpoint.done' || e.type === 'checkpoint.failed' || e.type === 'restart.done') {
    const tr = document.createElement('tr');
    const result = e.type === 'checkpoint.done'
      ? `written: ${bytes(Number(e.bytes))}, frozen ${Math.round(Number(e.frozenMs))} ms, ${Math.round(Number(e.totalMs))} ms in all${e.killed ? ', then stopped' : ''}`
      : e.type === 'restart.done' ? `restarted from this image` : `failed: ${String(e.reason)}`;
    tr.append(...[time(e.time), String(e.dir), result].map((t) => Object.assign(document.createElement('td'), { textContent: t })));
    $('#checkpoints tbody').prepend(tr);
  }
}

// ---------- actions ----------
function say(kind: 'alert' | 'status', text: string): void {
  const other = $<HTMLElement>(kind === 'alert' ? '#status' : '#alert');
  other.hidden = true;
  const el = $<HTMLElement>(`#${kind}`);
  el.textContent = text;
  el.hidden = false;
}

async function post(path: string, body: unknown): Promise<unknown> {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  const data = (await res.json().catch(() => null)) as unknown;
  if (!res.ok) {
    const err = (data as ApiError | null)?.error;
    throw new Error(err ? `${err.message} (${err.code})` : `the daemon answered ${res.status} ${res.statusText}`);
  }
  return data;
}

async function act(label: string, button: HTMLButtonElement | null, path: string, body: unknown, done: (result: unknown) => string): Promise<void> {
  if (button) button.disabled = true;
  say('status', `${label}…`);
  try {
    say('status', done(await post(path, body)));
  } catch (err) {
    say('alert', `${label} failed: ${(err as Error).message}`);
  } finally {
    const name = button?.closest('tr')?.dataset.name;
    const r = name === undefined ? undefined : rows.get(name);
    const tr = button?.closest('tr');
    if (r && tr) fill(tr, r);
  }
}

let checkpointFor: { name: string; button: HTMLButtonElement } | null = null;
document.addEventListener('click', (ev) => {
  const button = (ev.target as Element).closest<HTMLButtonElement>('button[data-act]');
  const name = button?.closest('tr')?.dataset.name;
  if (!button || name === undefined) return;
  const url = `/api/wpars/${encodeURIComponent(name)}`;
  switch (button.dataset.act) {
    case 'start': void act(`Start ${name}`, button, `${url}/start`, {}, () => `Started ${name}.`); break;
    case 'stop': void act(`Stop ${name}`, button, `${url}/stop`, {}, () => `Stopped ${name}.`); break;
    case 'checkpoint': {
      checkpointFor = { name, button };
      const dialog = $<HTMLDialogElement>('#checkpoint-dialog');
      set($('#checkpoint-title'), `Checkpoint ${name}`);
      dialog.showModal();
      break;
    }
    case 'move': {
      // The move route's contract (src/peer/move.ts MoveRequest): the trusted peer's name.
      const hosts = cluster?.hosts.filter((h) => h.state === 'up' && h.name !== rows.get(name)?.host).map((h) => h.name) ?? [];
      const peer = prompt(cluster ? `Move ${name} to which host (${hosts.join(', ') || 'no other host is up'})?` : `Move ${name} to which trusted peer (wpar peer ls)?`);
      if (peer) void act(`Move ${name}`, button, `${url}/move`, { peer }, () => `Moved ${name} to ${peer}.`);
      break;
    }
  }
});
$('#checkpoint-cancel').addEventListener('click', () => $<HTMLDialogElement>('#checkpoint-dialog').close());
$<HTMLFormElement>('#checkpoint-dialog form').addEventListener('submit', (ev) => {
  const form = ev.currentTarget as HTMLFormElement;
  const data = new FormData(form);
  const target = checkpointFor;
  if (!target) return;
  const body = { dir: String(data.get('dir')), waitSec: Number(data.get('waitSec')), kill: data.get('kill') === 'on' };
  void act(`Checkpoint ${target.name}`, target.button, `/api/wpars/${encodeURIComponent(target.name)}/checkpoint`, body, (result) => {
    const r = result as { dir: string; bytes: number; frozenMs: number; totalMs: number };
    return `Checkpointed ${target.name} to ${r.dir}: ${bytes(r.bytes)}, frozen ${Math.round(r.frozenMs)} ms.`;
  });
});
$<HTMLFormElement>('#restart-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget as HTMLFormElement;
  const data = new FormData(form);
  const newName = String(data.get('newName') ?? '').trim();
  const body = { dir: String(data.get('dir')).trim(), name: String(data.get('name')).trim(), ...(newName && { newName }) };
  void act(`Restart ${body.name}`, form.querySelector('button'), '/api/restart', body, (result) => `Restarted ${(result as Row).name} from ${body.dir}.`);
});

// ---------- the live stream ----------
function connect(): void {
  const conn = $<HTMLElement>('#conn');
  const events = new EventSource('/api/events');
  events.addEventListener('snapshot', (m) => {
    const s = JSON.parse((m as MessageEvent<string>).data) as { wpars: Row[]; capabilities: { move: boolean }; home: string; cluster: ClusterSnapshot | null };
    moveEnabled = s.capabilities.move;
    set($('#home'), s.cluster ? `${s.home} · host ${s.cluster.host}` : s.home);
    cluster = s.cluster;
    remoteNames.clear();
    const local = new Set(s.wpars.map((w) => w.name));
    const remote = (s.cluster?.remote ?? []).filter((w) => !local.has(w.name));
    for (const r of remote) remoteNames.add(r.name);
    renderAll([...s.wpars, ...remote].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
    if (s.cluster) renderHosts(s.cluster);
    conn.textContent = 'live';
    conn.className = 'conn live';
  });
  events.addEventListener('event', (m) => {
    const { event, name, wpar } = JSON.parse((m as MessageEvent<string>).data) as { event: DaemonEvent; name?: string; wpar?: Row | null };
    if (name !== undefined && (event.type === 'checkpoint.done' || event.type === 'checkpoint.failed')) writing.delete(name);
    // A WPAR this host does not have (null) may be another host's: that row is the cluster read's.
    if (name !== undefined && wpar !== undefined && !(wpar === null && remoteNames.has(name))) update(name, wpar);
    feed($('#feed'), event, 50);
    if (current !== null && event.name === current) wparEvent(event);
    stats.eventLatencies.push(Date.now() - event.time);
    if (stats.eventLatencies.length > 10_000) stats.eventLatencies.splice(0, 5_000);
  });
  events.addEventListener('row', (m) => {
    const { name, wpar } = JSON.parse((m as MessageEvent<string>).data) as { name: string; wpar: Row };
    update(name, wpar);
  });
  events.addEventListener('cluster', (m) => applyCluster(JSON.parse((m as MessageEvent<string>).data) as ClusterSnapshot));
  events.addEventListener('progress', (m) => {
    const p = JSON.parse((m as MessageEvent<string>).data) as { name: string; bytesDone: number; bytesTotal: number };
    stats.progress.push(p);
    if (stats.progress.length > 1000) stats.progress.splice(0, 500);
    writing.set(p.name, p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0);
    const r = rows.get(p.name);
    if (r) update(p.name, r);
  });
  events.addEventListener('usage', (m) => {
    const usage = JSON.parse((m as MessageEvent<string>).data) as Record<string, Usage>;
    for (const [name, u] of Object.entries(usage)) {
      const r = rows.get(name);
      if (r) update(name, { ...r, usage: u });
    }
  });
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) {
      conn.textContent = 'disconnected: reload the page (if the daemon restarted with a new token, open the address it printed)';
    } else conn.textContent = 'reconnecting…';
    conn.className = 'conn down';
  };
}

window.addEventListener('hashchange', route);
connect();
route();
