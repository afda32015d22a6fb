/**
 * `/metrics` (W4): the daemon in Prometheus text format through `prom-client`, names prefixed
 * `corral_`. Counts and histograms are fed by the daemon's journal (every kernel and runtime event);
 * gauges are read when scraped, from the WPAR manager and each WPAR's cgroup, so a scrape always
 * agrees with `lswpar --json` at that moment.
 * @module
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DaemonEvent, WparInfo, WparLetter } from '../daemon/protocol.ts';
import type { Usage } from './usage.ts';

/** What the metrics read when scraped. */
export interface MetricsSource {
  /** Every WPAR, as `lswpar --json` shows them. */
  list(): WparInfo[];
  /** The use now of a WPAR (from its cgroup). */
  usage(info: WparInfo): Usage;
}

/** The event-loop monitor's sampling period. */
const LAG_RESOLUTION_MS = 10;
const LETTERS: readonly WparLetter[] = ['D', 'T', 'A', 'F', 'B'];
/** Checkpoints take milliseconds to minutes: buckets from 10 ms to 5 min. */
const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Callouts are meant to be quick (the kernel times them out): 0.1 ms to 10 s. */
const CALLOUT_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** The console's metrics registry. Call {@link observe} with every journal event. */
export class ConsoleMetrics implements Disposable {
  /** The registry `/metrics` serializes. */
  readonly registry = new Registry();
  readonly #lag: ReturnType<typeof monitorEventLoopDelay>;
  readonly #denials: Counter<'wpar'>;
  readonly #checkpoints: Counter<'result'>;
  readonly #checkpointFailures: Counter<'errno'>;
  readonly #checkpointDuration: Histogram;
  readonly #checkpointFrozen: Histogram;
  readonly #restarts: Counter<'result'>;
  readonly #moves: Counter<'direction' | 'result'>;
  readonly #moveFailures: Counter<'step' | 'errno'>;
  readonly #moveDuration: Histogram;
  readonly #moveFrozen: Histogram;
  readonly #callouts: Histogram<'flags' | 'outcome'>;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    this.#lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    this.#lag.enable();
    const lag = this.#lag;

    new Gauge({
      name: 'corral_uptime_seconds', help: 'Seconds the daemon process has been running.', registers,
      collect() { this.set(process.uptime()); },
    });
    new Gauge({
      name: 'corral_event_loop_lag_seconds', help: 'Event-loop delay of the daemon since the last scrape (stat: mean, p50, p99, max).', labelNames: ['stat'], registers,
      collect() {
        // The monitor's timer fires every LAG_RESOLUTION_MS: what it records beyond that is the lag.
        const beyond = (ns: number): number => lag.count > 0 ? Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS) / 1000 : 0;
        this.set({ stat: 'mean' }, beyond(lag.mean));
        this.set({ stat: 'p50' }, beyond(lag.percentile(50)));
        this.set({ stat: 'p99' }, beyond(lag.percentile(99)));
        this.set({ stat: 'max' }, beyond(lag.max));
        lag.reset();
      },
    });

    // Read at scrape time: one listing serves every gauge of the scrape.
    let snapshot: { at: number; wpars: WparInfo[]; usage: Map<string, Usage> } | null = null;
    const now = (): { wpars: WparInfo[]; usage: Map<string, Usage> } => {
      const t = performance.now();
      if (snapshot === null || t - snapshot.at > 50) {
        const wpars = source.list();
        const usage = new Map(wpars.filter((w) => w.pid !== null).map((w) => [w.name, source.usage(w)]));
        snapshot = { at: t, wpars, usage };
      }
      return snapshot;
    };
    new Gauge({
      name: 'corral_wpars', help: 'WPARs by state letter (D defined, T transitional, A active, F frozen, B broken).', labelNames: ['state'], registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>(LETTERS.map((l) => [l, 0]));
        for (const w of now().wpars) counts.set(w.state, (counts.get(w.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'corral_wpar_state', help: 'One series per WPAR with value 1, labelled with its state letter.', labelNames: ['wpar', 'state'], registers,
      collect() { this.reset(); for (const w of now().wpars) this.set({ wpar: w.name, state: w.state }, 1); },
    });
    new Gauge({
      name: 'corral_wpar_cid', help: 'The cid the kernel holds for each active WPAR.', labelNames: ['wpar'], registers,
      collect() { this.reset(); for (const w of now().wpars) if (w.cid !== null) this.set({ wpar: w.name }, w.cid); },
    });
    new Gauge({
      name: 'corral_wpar_denials', help: 'Checkpoint denials outstanding now, by WPAR.', labelNames: ['wpar'], registers,
      collect() { this.reset(); for (const w of now().wpars) this.set({ wpar: w.name }, w.denials.length); },
    });
    const perWpar = (name: string, help: string, value: (w: WparInfo, u: Usage) => number | null | undefined): void => {
      new Gauge({
        name, help, labelNames: ['wpar'], registers,
        collect() {
          this.reset();
          const { wpars, usage } = now();
          for (const w of wpars) {
            const u = usage.get(w.name);
            const v = u ? value(w, u) : undefined;
            if (v !== null && v !== undefined) this.set({ wpar: w.name }, v);
          }
        },
      });
    };
    perWpar('corral_wpar_memory_bytes', 'Memory charged to each running WPAR\'s cgroup, in bytes.', (_w, u) => u.memoryBytes);
    perWpar('corral_wpar_memory_limit_bytes', 'Each running WPAR\'s memory limit, in bytes (absent: unlimited).', (w) => w.definition.limits.memoryBytes);
    perWpar('corral_wpar_cpu_seconds', 'CPU time used by each running WPAR, in seconds (cgroup v2: the cgroup\'s; v1: its processes now).', (_w, u) => u.cpuSeconds);
    perWpar('corral_wpar_cpu_limit_ratio', 'Each running WPAR\'s CPU limit in CPUs (1 = one CPU; absent: unlimited).', (w) => w.definition.limits.cpuPercent === undefined ? undefined : w.definition.limits.cpuPercent / 100);
    perWpar('corral_wpar_processes', 'Processes in each running WPAR\'s cgroup.', (_w, u) => u.procs);
    perWpar('corral_wpar_processes_limit', 'Each running WPAR\'s process limit (absent: unlimited).', (w) => w.definition.limits.procs);

    this.#denials = new Counter({ name: 'corral_denials_total', help: 'Checkpoint denials made, by WPAR.', labelNames: ['wpar'], registers });
    this.#checkpoints = new Counter({ name: 'corral_checkpoints_total', help: 'Checkpoints attempted, by result (ok, failed).', labelNames: ['result'], registers });
    this.#checkpointFailures = new Counter({ name: 'corral_checkpoint_failures_total', help: 'Failed checkpoints by errno (a TRY that timed out is ETIMEDOUT).', labelNames: ['errno'], registers });
    this.#checkpointDuration = new Histogram({ name: 'corral_checkpoint_duration_seconds', help: 'Duration of successful checkpoints, TRY to the end.', buckets: DURATION_BUCKETS, registers });
    this.#checkpointFrozen = new Histogram({ name: 'corral_checkpoint_frozen_seconds', help: 'How long successful checkpoints kept the WPAR\'s processes frozen.', buckets: DURATION_BUCKETS, registers });
    this.#restarts = new Counter({ name: 'corral_restarts_total', help: 'Restarts from an image, by result (ok, failed).', labelNames: ['result'], registers });
    this.#callouts = new Histogram({ name: 'corral_callout_duration_seconds', help: 'Latency of WPARSTART and WPARSTOP callouts to extensions, by outcome.', labelNames: ['flags', 'outcome'], buckets: CALLOUT_BUCKETS, registers });
    for (const result of ['ok', 'failed']) { this.#checkpoints.inc({ result }, 0); this.#restarts.inc({ result }, 0); }
    this.#moves = new Counter({ name: 'corral_moves_total', help: 'Live moves by direction (out: this system departed; in: it arrived) and result (ok, failed).', labelNames: ['direction', 'result'], registers });
    this.#moveFailures = new Counter({ name: 'corral_move_failures_total', help: 'Failed live moves by the step that failed and errno (EIO when the event names none).', labelNames: ['step', 'errno'], registers });
    this.#moveDuration = new Histogram({ name: 'corral_move_duration_seconds', help: 'Duration of successful outgoing moves, first round to the arrival running.', buckets: DURATION_BUCKETS, registers });
    this.#moveFrozen = new Histogram({ name: 'corral_move_frozen_seconds', help: 'How long successful outgoing moves kept the WPAR frozen on this system.', buckets: DURATION_BUCKETS, registers });
    for (const direction of ['out', 'in']) for (const result of ['ok', 'failed']) this.#moves.inc({ direction, result }, 0);
  }

  /** Feeds one journal event into the counters and histograms. */
  observe(e: DaemonEvent): void {
    switch (e.type) {
      case 'deny':
        this.#denials.inc({ wpar: String(e.name) });
        break;
      case 'callout':
        if (typeof e.ms === 'number') this.#callouts.observe({ flags: String(e.flags), outcome: String(e.outcome) }, e.ms / 1000);
        break;
      case 'try.done':
        // A TRY that did not succeed ends the checkpoint before it begins: count it with its errno.
        if (e.result !== 'ok') this.#failed(String(e.result));
        break;
      case 'checkpoint.failed':
        this.#failed(typeof e.code === 'string' ? e.code : 'EIO');
        break;
      case 'move.done':
        this.#moves.inc({ direction: e.to !== undefined ? 'out' : 'in', result: 'ok' });
        if (e.to !== undefined && typeof e.totalMs === 'number') this.#moveDuration.observe(e.totalMs / 1000);
        if (e.to !== undefined && typeof e.frozenMs === 'number') this.#moveFrozen.observe(e.frozenMs / 1000);
        break;
      case 'move.failed':
        this.#moves.inc({ direction: e.to !== undefined ? 'out' : 'in', result: 'failed' });
        this.#moveFailures.inc({ step: String(e.step ?? 'unknown'), errno: typeof e.code === 'string' ? e.code : 'EIO' });
        break;
      case 'checkpoint.done':
        this.#checkpoints.inc({ result: 'ok' });
        if (typeof e.totalMs === 'number') this.#checkpointDuration.observe(e.totalMs / 1000);
        if (typeof e.frozenMs === 'number') this.#checkpointFrozen.observe(e.frozenMs / 1000);
        break;
      case 'restart.done':
        this.#restarts.inc({ result: 'ok' });
        break;
      case 'restart.failed':
        this.#restarts.inc({ result: 'failed' });
        break;
    }
  }

  #failed(errno: string): void {
    this.#checkpoints.inc({ result: 'failed' });
    this.#checkpointFailures.inc({ errno });
  }

  /** The text a scrape gets. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Stops the event-loop monitor. */
  [Symbol.dispose](): void {
    this.#lag.disable();
  }
}
