/**
 * Paths of the control API (`src/daemon/protocol.ts`).
 * @module
 */

/** `/v1/wpars/NAME[/ACTION][?QUERY]`, the name and query encoded. */
export function wparPath(name: string, action?: string, query?: Readonly<Record<string, string>>): string {
  const base = `/v1/wpars/${encodeURIComponent(name)}${action === undefined ? '' : `/${action}`}`;
  const q = query === undefined ? '' : new URLSearchParams(query).toString();
  return q === '' ? base : `${base}?${q}`;
}
