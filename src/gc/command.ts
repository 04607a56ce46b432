import os from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/load.js';
import { compileRetention } from '../config/retention.js';
import { formatBytes } from '../copy/copy.js';
import { createLogger } from '../log/logger.js';
import { createStorageDriver } from '../storage/drivers.js';
import type { GcReport } from './collector.js';
import { LeaseHeldError } from './lease.js';
import { runGc } from './run.js';

export const GC_HELP = `Usage: keyport gc [--dry-run] [--delete-untagged] [--grace SECONDS] [--json] [--config FILE]

Frees storage no image uses, online: registries keep serving pushes and pulls
while it runs, on any number of instances sharing the store.

Live: blobs of tagged manifests (through indexes, recursively), their configs,
referrers (signatures, SBOMs) of live manifests, and, unless --delete-untagged,
every manifest revision and what it uses. Everything else written more than the
grace period ago is deleted: blobs, repository layer links, untagged manifests
(--delete-untagged) and repositories left empty.

Options:
  -n, --dry-run          report what would be deleted (per repository), delete nothing
      --delete-untagged  also delete manifests no tag reaches (pushed by digest only)
      --grace SECONDS    keep anything written less than this long ago (default: storage.gc.grace, 3600)
      --json             print one JSON object with the counts on the last line
  -c, --config FILE      configuration file, as for keyport registry; also KEYPORT_*

It runs ten steps nicer than its caller, so that a registry on the same host is
served first (nice -n -10 keyport gc: the caller's priority).

Retention rules (storage.gc.retention) are applied first: the tags and untagged
manifests they condemn are removed (listed with --dry-run), then collected as above.

Exit status: 0 done, 1 failed, 2 bad usage, 75 another GC holds the lease, 78 bad configuration.
`;

export interface GcIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export async function runGcCommand(argv: string[], io: GcIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'dry-run': { type: 'boolean', short: 'n' },
        'delete-untagged': { type: 'boolean' },
        grace: { type: 'string' },
        json: { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.stderr.write(`keyport gc: ${(e as Error).message}\n\n${GC_HELP}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(GC_HELP);
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig({ ...(values.config ? { file: values.config } : {}), env: io.env });
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr.write(`keyport gc: ${e.message}\n`);
      return 78;
    }
    throw e;
  }
  let grace = config.storage.gc.grace;
  if (values.grace !== undefined) {
    if (!/^[0-9]+$/.test(values.grace)) {
      io.stderr.write(`keyport gc: --grace wants a whole number of seconds, not ${JSON.stringify(values.grace)}\n`);
      return 2;
    }
    grace = Number(values.grace);
  }
  yieldCpuToRegistries();
  // Logs go to stderr so that stdout carries the report (and the JSON line) only.
  const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level, process.stderr);
  const driver = await createStorageDriver(config.storage, log);
  const tty = io.stderr.isTTY && !values.json;
  let lastDraw = 0;
  const progress = tty
    ? (phase: string, done: number, total: number) => {
        if (Date.now() - lastDraw < 100 && done < total) return;
        lastDraw = Date.now();
        const width = 30;
        const filled = total ? Math.round((done / total) * width) : width;
        io.stderr.write(`\r\x1b[K${phase.padEnd(5)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
      }
    : undefined;
  try {
    const report = await runGc(
      driver,
      {
        dryRun: !!values['dry-run'],
        deleteUntagged: !!values['delete-untagged'],
        graceSeconds: grace,
        leaseTtlSeconds: config.storage.gc.leaseTtl,
        claimWindowSeconds: config.storage.gc.claimWindow,
        trigger: 'cli',
        retention: compileRetention(config.storage.gc.retention),
        onProgress: progress,
      },
      log,
    );
    if (tty) io.stderr.write('\r\x1b[K');
    io.stdout.write(describe(report));
    if (values.json) {
      const { marked_blobs, deleted_blobs, deleted_bytes, deleted_manifests, deleted_links, duration_s, dry_run, retention_deleted_tags, retention_deleted_manifests } = report;
      io.stdout.write(
        `${JSON.stringify({ marked_blobs, deleted_blobs, deleted_bytes, deleted_manifests, deleted_links, duration_s, dry_run, retention_deleted_tags, retention_deleted_manifests })}\n`,
      );
    }
    return 0;
  } catch (e) {
    if (tty) io.stderr.write('\r\x1b[K');
    if (e instanceof LeaseHeldError) {
      io.stderr.write(`keyport gc: ${e.message}\n`);
      return 75;
    }
    io.stderr.write(`keyport gc: failed: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await driver.close?.();
  }
}

/** The human-readable summary; with --dry-run also what each repository would lose. */
function describe(r: GcReport): string {
  const would = r.dry_run ? 'would delete' : 'deleted';
  const lines: string[] = [];
  if (r.dry_run) {
    for (const [name, rep] of Object.entries(r.repositories).sort(([a], [b]) => a.localeCompare(b))) {
      const parts = [...(rep.tags.length ? [`${rep.tags.length} tags (retention)`] : []), `${rep.manifests.length} manifests`, `${rep.links.length} layer links`];
      const empty = !rep.manifests.length && !rep.links.length && !rep.tags.length;
      lines.push(`${name}: ${would} ${empty ? 'the empty repository' : parts.join(', ')}`);
      for (const t of rep.tags) lines.push(`  tag ${t}`);
      for (const m of rep.manifests) lines.push(`  manifest ${m}`);
      for (const l of rep.links) lines.push(`  layer link ${l}`);
    }
    for (const b of r.blobs) lines.push(`blob ${b}`);
  }
  lines.push(`marked ${r.marked_blobs} live blobs`);
  lines.push(
    `${would} ${r.deleted_blobs} blobs (${formatBytes(r.deleted_bytes)}), ${r.deleted_manifests} manifests, ${r.deleted_links} layer links, ${r.deleted_repositories} empty repositories in ${r.duration_s} s`,
  );
  if (r.retention_deleted_tags || r.retention_deleted_manifests) {
    lines.push(`retention: ${would} ${r.retention_deleted_tags} tags and ${r.retention_deleted_manifests} untagged manifests`);
  }
  if (r.kept_in_use) lines.push(`kept ${r.kept_in_use} candidates that pushes claimed during the run`);
  return lines.join('\n') + '\n';
}

/**
 * GC is batch work that usually shares its host with a serving registry (from cron on a
 * controller): ten steps of niceness let the scheduler prefer the registry's requests.
 * Relative to the caller's, so `nice -n -10 keyport gc` runs it at the caller's priority.
 */
function yieldCpuToRegistries(): void {
  try {
    os.setPriority(Math.min(19, os.getPriority() + 10));
  } catch {
    // Not permitted here (a sandbox): run at the caller's priority.
  }
}
