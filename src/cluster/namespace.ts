/**
 * One namespace of WPARs across the cluster (C3): each definition is a record in etcd under
 * `/corral/wpars/NAME`, created by a transaction that succeeds only if the name is free — so of two
 * concurrent `mkwpar` of one name on two hosts, exactly one wins and the other gets EEXIST.
 * @module
 */
import type { Etcd3 } from 'etcd3';
import { WparError } from '../kernel/errno.ts';
import type { WparDefinition } from '../runtime/definition.ts';
import { etcdError } from './etcd.ts';
import { parseWpar, REPLICAS, WPARS, type WparRecord } from './records.ts';

/** The cluster's WPAR records. */
export class Namespace {
  readonly #client: Etcd3;
  readonly #urls: readonly string[];

  constructor(client: Etcd3, urls: readonly string[]) {
    this.#client = client;
    this.#urls = urls;
  }

  /** Every WPAR record, by name. */
  async all(): Promise<WparRecord[]> {
    let kvs: Record<string, string>;
    try {
      kvs = await this.#client.getAll().prefix(WPARS).strings();
    } catch (err) {
      throw etcdError(err, 'listing the cluster\'s WPARs', this.#urls);
    }
    return Object.entries(kvs).map(([k, v]) => parseWpar(k, v)).filter((r): r is WparRecord => r !== null)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The record of `name`, or undefined. */
  async get(name: string): Promise<WparRecord | undefined> {
    let text: string | null;
    try {
      text = await this.#client.get(WPARS + name).string();
    } catch (err) {
      throw etcdError(err, `${name}: looking it up in the cluster`, this.#urls);
    }
    return text === null ? undefined : parseWpar(WPARS + name, text) ?? undefined;
  }

  /**
   * Claims `definition.name` for `host` with that first `epoch` (1 for a new WPAR): EEXIST (naming
   * the owner) if the name is taken.
   */
  async claim(definition: WparDefinition, host: string, epoch = 1): Promise<WparRecord> {
    const key = WPARS + definition.name;
    const record: WparRecord = { name: definition.name, host, definition, created: Date.now(), epoch };
    let result;
    try {
      result = await this.#client.if(key, 'Create', '==', 0)
        .then(this.#client.put(key).value(JSON.stringify(record)))
        .else(this.#client.get(key))
        .commit();
    } catch (err) {
      throw etcdError(err, `${definition.name}: defining it in the cluster`, this.#urls);
    }
    if (!result.succeeded) {
      const held = result.responses[0]?.response_range?.kvs[0];
      const owner = held ? parseWpar(key, held.value.toString())?.host : undefined;
      throw new WparError('EEXIST', `${definition.name}: the name is taken in the cluster${owner ? ` (defined on ${owner})` : ''}`);
    }
    return record;
  }

  /**
   * Changes the owner of `record` to `host`, raising its epoch (C4), by a transaction that succeeds
   * only if the record is still exactly `record` (EBUSY if it changed meanwhile). Returns the new record.
   */
  async transfer(record: WparRecord, host: string): Promise<WparRecord> {
    const key = WPARS + record.name;
    const next: WparRecord = { ...record, host, epoch: record.epoch + 1 };
    let result;
    try {
      result = await this.#client.if(key, 'Value', '==', JSON.stringify(record)).then(this.#client.put(key).value(JSON.stringify(next))).commit();
    } catch (err) {
      throw etcdError(err, `${record.name}: handing it to ${host} in the cluster`, this.#urls);
    }
    if (!result.succeeded) throw new WparError('EBUSY', `${record.name}: its record changed while handing it to ${host}; not moved`);
    return next;
  }

  /** Removes the record of `name` (and of its newest replica, C5) if it still names `host` as its owner. */
  async release(name: string, host: string): Promise<void> {
    const key = WPARS + name;
    try {
      const text = await this.#client.get(key).string();
      const r = text === null ? null : parseWpar(key, text);
      if (r && r.host !== host) return;
      await this.#client.if(key, 'Value', '==', text ?? '').then(this.#client.delete().key(key), this.#client.delete().key(REPLICAS + name)).commit();
    } catch (err) {
      throw etcdError(err, `${name}: removing it from the cluster`, this.#urls);
    }
  }
}
