import crypto from 'node:crypto';
import os from 'node:os';
import { PathNotFoundError, type StorageDriver } from '../storage/driver.js';
import { keyportPaths } from './paths.js';

export interface LeaseRecord {
  owner: string;
  /** Epoch milliseconds after which anyone may take the lease over. 0: released. */
  expires: number;
  host: string;
  pid: number;
  acquired: string;
}

export interface LeaseOptions {
  /** How long the lease lasts without a heartbeat, in milliseconds. */
  ttlMs: number;
  /** Who the holder is, for the error another instance shows. */
  owner?: string;
}

/** Another GC holds the lease; `holder` says who and until when. */
export class LeaseHeldError extends Error {
  override name = 'LeaseHeldError';
  constructor(readonly holder: LeaseRecord) {
    super(`another garbage collection holds the lease: ${holder.owner} on ${holder.host} (pid ${holder.pid}), until ${new Date(holder.expires).toISOString()}`);
  }
}

/** The lease was lost (a heartbeat failed for too long, or a newer holder appeared). */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

/**
 * One GC at a time across every instance sharing the store.
 *
 * The lease is a sequence of generations, one object each (`lease/<n>`); the holder
 * of the highest generation holds the lease while its record has not expired. To take
 * the lease, an instance creates generation n+1 with putExclusive, which the store
 * lets exactly one creator win; the previous generation must be expired or released
 * first. So there is never a delete-then-create window in which two takers could
 * both succeed: each generation is won once, and a generation is only attempted over
 * a dead one. Listings only hint at the highest generation (object-store listings
 * lag); a stale hint just makes the create fail, and the taker reads the newer one.
 *
 * The holder renews its record every ttl/3 (heartbeat), and before renewing checks
 * that no generation n+1 exists. It stops trusting the lease at its own expiry
 * minus a margin for clock differences (`valid()`), whatever the heartbeat does: a
 * taker only creates n+1 after that expiry by its own clock, so holder and taker
 * never overlap as long as clocks agree within the margin. A holder killed with
 * SIGKILL simply stops renewing, and the lease is free once its expiry passed.
 */
export class Lease {
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private released = false;
  private lostReason: string | undefined;

  private constructor(
    private readonly driver: StorageDriver,
    readonly generation: number,
    private record: LeaseRecord,
    private readonly ttlMs: number,
  ) {}

  /** Clock differences between instances the lease tolerates, and renewal latency. */
  static marginMs(ttlMs: number): number {
    return Math.min(10_000, Math.floor(ttlMs / 4));
  }

  /** Takes the lease, or throws LeaseHeldError naming the current holder. */
  static async acquire(driver: StorageDriver, opts: LeaseOptions): Promise<Lease> {
    const owner = opts.owner ?? `gc-${crypto.randomBytes(6).toString('hex')}`;
    let n = await highestGeneration(driver);
    for (let attempt = 0; attempt < 16; attempt++) {
      if (n > 0) {
        const current = await readRecord(driver, n);
        // A missing record means a newer holder removed it; the create below tells.
        if (current && current.expires > Date.now()) throw new LeaseHeldError(current);
      }
      const record: LeaseRecord = {
        owner,
        expires: Date.now() + opts.ttlMs,
        host: os.hostname(),
        pid: process.pid,
        acquired: new Date().toISOString(),
      };
      if (await driver.putExclusive(keyportPaths.lease(n + 1), Buffer.from(JSON.stringify(record)))) {
        // Read back: a store whose conditional create is not what it claims would show
        // another owner here, and then this instance must not go on.
        const back = await readRecord(driver, n + 1);
        if (back?.owner !== owner) throw new LeaseHeldError(back ?? record);
        const lease = new Lease(driver, n + 1, record, opts.ttlMs);
        await lease.pruneOlder();
        lease.startHeartbeat();
        return lease;
      }
      n += 1;
    }
    throw new LeaseLostError('the GC lease changed hands too often to be taken');
  }

  /** Who holds the lease now, if anyone (for status output). */
  static async holder(driver: StorageDriver): Promise<LeaseRecord | undefined> {
    const n = await highestGeneration(driver);
    const r = n > 0 ? await readRecord(driver, n) : undefined;
    return r && r.expires > Date.now() ? r : undefined;
  }

  get owner(): string {
    return this.record.owner;
  }

  /** True while work under the lease is safe: not lost, and well before expiry by this clock. */
  valid(): boolean {
    return !this.lostReason && Date.now() < this.record.expires - Lease.marginMs(this.ttlMs);
  }

  /** Throws LeaseLostError unless valid(); called before every destructive step. */
  check(): void {
    if (this.lostReason) throw new LeaseLostError(`the GC lease was lost: ${this.lostReason}`);
    if (!this.valid()) throw new LeaseLostError('the GC lease expired before it could be renewed');
  }

  /** Extends the expiry; marks the lease lost when a newer generation exists. */
  async renew(): Promise<void> {
    if (this.lostReason || this.released) return;
    if (await exists(this.driver, keyportPaths.lease(this.generation + 1))) {
      this.lostReason = 'a newer holder took it over';
      return;
    }
    // A store whose conditional create let two creators win keeps one record: the
    // other holder finds it at its next beat and stops, so two never work on for long.
    const current = await readRecord(this.driver, this.generation);
    if (current && current.owner !== this.record.owner) {
      this.lostReason = `${current.owner} holds this generation too`;
      return;
    }
    if (!this.valid()) {
      this.lostReason = 'it expired before it could be renewed';
      return;
    }
    // A release since this renewal began wins: writing an expiry now would hold the
    // lease for a whole ttl after its holder is gone.
    if (this.released) return;
    const record = { ...this.record, expires: Date.now() + this.ttlMs };
    await this.driver.putContent(keyportPaths.lease(this.generation), Buffer.from(JSON.stringify(record)));
    this.record = record;
  }

  private startHeartbeat(): void {
    const every = Math.max(200, Math.floor(this.ttlMs / 3));
    const beat = () => {
      this.renewTimer = setTimeout(() => {
        // A failed renewal is retried at the next beat; valid() turns false by itself
        // when renewals keep failing until the expiry comes near.
        this.renewing = this.renew()
          .catch(() => undefined)
          .finally(() => {
            this.renewing = undefined;
            if (this.renewTimer) beat();
          });
      }, every);
      this.renewTimer.unref();
    };
    beat();
  }

  /** Stops the heartbeat and marks the record released, so the next GC need not wait. */
  async release(): Promise<void> {
    const t = this.renewTimer;
    this.renewTimer = undefined;
    if (t) clearTimeout(t);
    // A renewal in flight must land before the released record, not after it.
    this.released = true;
    await this.renewing;
    if (this.lostReason) return;
    if (await exists(this.driver, keyportPaths.lease(this.generation + 1))) return;
    const record = { ...this.record, expires: 0 };
    await this.driver.putContent(keyportPaths.lease(this.generation), Buffer.from(JSON.stringify(record)));
  }

  /** Older generations are dead once this one was won; removing them keeps the listing short. */
  private async pruneOlder(): Promise<void> {
    let entries: string[] = [];
    try {
      entries = await this.driver.list(keyportPaths.leaseDir());
    } catch (e) {
      if (!(e instanceof PathNotFoundError)) throw e;
    }
    for (const p of entries) {
      const g = generationOf(p);
      if (g !== undefined && g < this.generation) await this.driver.delete(p).catch(() => undefined);
    }
  }
}

function generationOf(p: string): number | undefined {
  const last = p.slice(p.lastIndexOf('/') + 1);
  return /^[0-9]{1,15}$/.test(last) ? Number(last) : undefined;
}

async function highestGeneration(driver: StorageDriver): Promise<number> {
  let entries: string[];
  try {
    entries = await driver.list(keyportPaths.leaseDir());
  } catch (e) {
    if (e instanceof PathNotFoundError) return 0;
    throw e;
  }
  return Math.max(0, ...entries.map((p) => generationOf(p) ?? 0));
}

async function readRecord(driver: StorageDriver, n: number): Promise<LeaseRecord | undefined> {
  let raw: Buffer;
  try {
    raw = await driver.getContent(keyportPaths.lease(n));
  } catch (e) {
    if (e instanceof PathNotFoundError) return undefined;
    throw e;
  }
  try {
    const r = JSON.parse(raw.toString('utf8')) as Partial<LeaseRecord>;
    if (typeof r.owner === 'string' && typeof r.expires === 'number') {
      return { owner: r.owner, expires: r.expires, host: String(r.host ?? '?'), pid: Number(r.pid ?? 0), acquired: String(r.acquired ?? '') };
    }
  } catch {
    // fall through: an unreadable record holds nothing
  }
  return { owner: '(unreadable)', expires: 0, host: '?', pid: 0, acquired: '' };
}

async function exists(driver: StorageDriver, p: string): Promise<boolean> {
  try {
    await driver.stat(p);
    return true;
  } catch (e) {
    if (e instanceof PathNotFoundError) return false;
    throw e;
  }
}
