/**
 * What the commands print: the `lswpar` table and long form, event lines, checkpoint summaries,
 * times, sizes and command lines. Pure functions of the API's data (times in local time).
 * @module
 */
import type { CheckpointResult, DaemonEvent, DenialInfo, ExitInfo, WparInfo, WparLetter } from '../daemon/protocol.ts';
import { formatLimits } from '../runtime/limits.ts';
import { formatNetwork } from '../definition/network.ts';

const STATE_NAMES: Readonly<Record<WparLetter, string>> = {
  D: 'Defined', T: 'Transitional', A: 'Active', F: 'Frozen', B: 'Broken', M: 'Moving',
};

/** The word for a state letter (`A` → `Active`). */
export function stateName(letter: WparLetter): string {
  return STATE_NAMES[letter] ?? letter;
}

const two = (n: number): string => String(n).padStart(2, '0');

/** `HH:MM:SS` in local time. */
export function clock(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** `HH:MM:SS.mmm` in local time. */
export function clockMs(ms: number): string {
  return `${clock(ms)}.${String(new Date(ms).getMilliseconds()).padStart(3, '0')}`;
}

/** `YYYY-MM-DD HH:MM:SS` in local time. */
export function dateTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${clock(ms)}`;
}

/** One argument as a POSIX shell would need it written (for display only; nothing is ever run by a shell). */
export function quoteArg(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command's argv for display: `node server.js '--greeting=hello world'`. */
export function commandLine(argv: readonly string[]): string {
  return argv.map(quoteArg).join(' ');
}

/** Bytes in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** A duration: `250 ms` under a second, else `1.2 s`. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Left-aligned columns separated by two spaces, a dashed rule under the header (AIX style). */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const total = widths.reduce((a, w) => a + w, 0) + 2 * (widths.length - 1);
  return [line(header), '-'.repeat(total), ...rows.map(line)].map((l) => l + '\n').join('');
}

/**
 * `lswpar`'s table: Name, State (`M to PEER` while it moves), CID, Phase, Denials (R3: how many, and
 * the oldest's owner and reason), Command.
 */
export function lswparTable(wpars: readonly WparInfo[]): string {
  // In a cluster (C3) every WPAR has a host, shown after its name.
  const hosts = wpars.some((w) => w.host !== undefined);
  return formatTable(
    ['Name', ...(hosts ? ['Host'] : []), 'State', 'CID', 'Phase', 'Denials', 'Command'],
    wpars.map((w) => [
      w.name,
      ...(hosts ? [w.host ?? '-'] : []),
      w.movingTo === undefined ? w.state : `${w.state} to ${w.movingTo}`,
      w.cid === null ? '-' : String(w.cid),
      w.phase ?? '-',
      denialsCell(w.denials),
      commandLine(w.definition.argv),
    ]),
  );
}

/** `0`, or `2: agent:web/4711 "batch 12", +1 more` (the oldest denial's owner and reason). */
function denialsCell(denials: readonly DenialInfo[]): string {
  const [first] = denials;
  if (first === undefined) return '0';
  const reason = first.reason.length <= 40 ? first.reason : `${first.reason.slice(0, 37)}...`;
  return `${denials.length}: ${first.owner} ${JSON.stringify(reason)}${denials.length > 1 ? `, +${denials.length - 1} more` : ''}`;
}

/** A denial on one line: `agent:web/4711 "writing batch 12" since 10:02:11`. */
export function denialLine(d: DenialInfo): string {
  return `${d.owner} ${JSON.stringify(d.reason)} since ${clock(d.since)}`;
}

/** How a run ended: `status 0 (exited with status 0) at 2025-01-02 10:00:00`. */
export function exitLine(exit: ExitInfo): string {
  const how = exit.code !== null ? `status ${exit.code}` : exit.signal !== null ? `signal ${exit.signal}` : 'unknown status';
  return `${how} (${exit.reason}) at ${dateTime(exit.at)}`;
}

const RULE = '='.repeat(65);

/** `lswpar -L`: every detail of each WPAR, AIX's sectioned long form. */
export function lswparLong(wpars: readonly WparInfo[]): string {
  return wpars.map(longForm).join('\n');
}

function longForm(w: WparInfo): string {
  const d = w.definition;
  const field = (label: string, value: string): string => {
    const [first = '', ...more] = value.split('\n');
    return [`${(label + ':').padEnd(20)}${first}`, ...more.map((m) => ' '.repeat(20) + m)].join('\n') + '\n';
  };
  const yes = (b: boolean): string => (b ? 'yes' : 'no');
  const env = Object.entries(d.env).map(([k, v]) => `${k}=${v}`);
  const limits = formatLimits(d.limits);
  let out = `${RULE}\n${w.name} - ${stateName(w.state)}\n${RULE}\n`;
  out += 'GENERAL\n';
  out += field('Name', w.name);
  if (w.host !== undefined) out += field('Host', w.host);
  out += field('State', `${w.state} (${stateName(w.state)})${w.movingTo === undefined ? '' : ` to ${w.movingTo}`}`);
  out += field('CID', w.cid === null ? '-' : String(w.cid));
  out += field('Checkpointable', yes(w.checkpointable));
  out += field('Auto start', yes(w.autostart));
  out += field('Failover', yes(d.failover === true));
  out += field('Transient', yes(w.transient));
  out += field('Hostname', d.hostname ?? w.name);
  out += field('Command', commandLine(d.argv));
  out += field('Environment', env.length === 0 ? '-' : env.join('\n'));
  out += field('Resource limits', limits === '' ? 'none' : limits);
  out += field('Network', formatNetwork(d.network));
  out += field('Root', w.root);
  out += '\nRUNTIME\n';
  out += field('Isolation', w.isolation ?? '-');
  out += field('Not in force', w.isolationMissing.length === 0 ? 'none' : w.isolationMissing.join('\n'));
  out += field('Unenforced limits', w.unenforcedLimits.length === 0 ? 'none' : w.unenforcedLimits.join(', '));
  out += field('PID', w.pid === null ? '-' : String(w.pid));
  out += field('Started', w.startedAt === null ? '-' : dateTime(w.startedAt));
  out += field('Checkpoint phase', w.phase ?? '-');
  out += field('Last exit', w.lastExit === null ? '-' : exitLine(w.lastExit));
  if (d.checkpointEvery !== undefined) {
    out += '\nSCHEDULED CHECKPOINTS\n';
    out += field('Every', `${d.checkpointEvery} s${d.failover === true ? ', failover' : ''}`);
    out += field('Replicas wanted', String(d.replicas ?? 0));
    const c = w.checkpoint;
    out += field('Last checkpoint', c === undefined ? '-' : `${dateTime(c.time)} (${c.ageSec} s ago), epoch ${c.epoch}, #${c.seq}, ${formatBytes(c.size)}`);
    out += field('Replicas on', c === undefined || c.hosts.length === 0 ? '-' : c.hosts.join(', '));
  }
  out += '\nDENIALS\n';
  out += w.denials.length === 0 ? 'none\n' : w.denials.map((x) => denialLine(x) + '\n').join('');
  return out;
}

/** A field value in an event line: bare when safe, else JSON. */
function eventValue(key: string, value: unknown): string {
  if (typeof value === 'number' && (key === 'since' || key === 'at') && value > 1e11) return clock(value);
  if (typeof value === 'string') return /^[A-Za-z0-9_@%+:,./-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One human line per event: time, type, WPAR and the other fields as `key=value`, e.g.
 * `10:02:11.123  deny              web  cid=3 owner=agent:web/4711 reason="writing batch 12" since=10:02:11`.
 */
export function eventLine(event: DaemonEvent): string {
  const name = typeof event['name'] === 'string' ? event['name'] : '-';
  const fields = Object.entries(event)
    .filter(([k, v]) => k !== 'type' && k !== 'time' && k !== 'name' && v !== undefined)
    .map(([k, v]) => `${k}=${eventValue(k, v)}`);
  const time = typeof event.time === 'number' ? clockMs(event.time) : '--:--:--.---';
  return `${time}  ${String(event.type).padEnd(16)}  ${name}${fields.length === 0 ? '' : '  ' + fields.join(' ')}`;
}

/** `chkptwpar`'s one-line summary of a checkpoint. */
export function checkpointSummary(r: CheckpointResult): string {
  const agents = r.agents.length === 0 ? 'no agents' : `agents ${r.agents.join(', ')}`;
  return `Checkpointed ${r.name} into ${r.dir}: ${formatBytes(r.bytes)}, frozen ${formatDuration(r.frozenMs)}, `
    + `total ${formatDuration(r.totalMs)}, ${agents}${r.killed ? '; the WPAR was stopped' : ''}`;
}
