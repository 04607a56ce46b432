#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigWithWarnings, type Config } from './config/load.js';
import { markdownReference, settings, textReference } from './config/reference.js';
import { isClusterWorker, resolveWorkers, runPrimary } from './http/cluster.js';
import { guardProcess } from './http/process-guard.js';
import { createLogger, type Logger } from './log/logger.js';
import { CertificateError, certPaths, ensureCertificates } from './tls/certificates.js';
import { notifyReady, workersListening } from './util/service-ready.js';
import type { Running } from './http/running.js';

const HELP = `Usage: keyport <command> [--config FILE]

Commands:
  start      run the token server and the registry together (quick start)
  token      run the token server (HTTPS, default port 9002)
  registry   run the registry (HTTPS, default port 9001)
  certs      generate missing certificates and keys in the certs directory
  copy       copy an image into this Keyport, optionally after a check ("keyport copy --help")
  whoami     log in and show your user, namespace and what you may do where
  gc         free storage no image uses, online ("keyport gc --help")
  config     print the effective configuration, as a file --config reads
             (secrets left out)
  env        list every setting with its environment variable and default
             ("keyport env markdown" prints the README table)

Options:
  -c, --config FILE   configuration file (JSON or YAML; a Docker Distribution
                      config.yml is read as it is); also KEYPORT_CONFIG
  -h, --help          show this help
  -v, --version       show the version

Configuration comes from config/*.json, then --config, then KEYPORT_* variables.
`;

async function main(argv: string[]): Promise<number> {
  const io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
  if (argv[0] === 'copy') return (await import('./copy/command.js')).runCopy(argv.slice(1), io);
  if (argv[0] === 'gc') return (await import('./gc/command.js')).runGcCommand(argv.slice(1), io);
  if (argv[0] === 'whoami') return (await import('./whoami/command.js')).runWhoami(argv.slice(1), io);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (e) {
    process.stderr.write(`keyport: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`keyport ${pkg.version}\n`);
    return 0;
  }
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(HELP);
    return command || values.help ? 0 : 2;
  }
  if (command === 'env') {
    process.stdout.write(positionals[1] === 'markdown' ? markdownReference() + '\n' : textReference());
    return 0;
  }
  if (!['start', 'token', 'registry', 'certs', 'config'].includes(command)) {
    process.stderr.write(`keyport: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
    return 2;
  }

  let config: Config;
  let warnings: string[];
  try {
    ({ config, warnings } = loadConfigWithWarnings(values.config ? { file: values.config } : {}));
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`keyport: ${e.message}\n`);
      return 78; // EX_CONFIG: systemd will not loop on a broken configuration
    }
    throw e;
  }
  const log = createLogger(config.log.level, undefined, config.log.format);

  if (command === 'config') {
    for (const w of warnings) process.stderr.write(`keyport: warning: ${w}\n`);
    process.stdout.write(JSON.stringify(printableConfig(config), null, 2) + '\n');
    return 0;
  }
  // Workers would repeat them; the primary (or the lone process) says them once.
  if (!isClusterWorker()) for (const w of warnings) log.warn(w);

  try {
    ensureCertificates({ certsDir: config.tls.certsDir, names: serverNames(config), tokenKeyType: config.tls.tokenKeyType }, log);
  } catch (e) {
    if (e instanceof CertificateError) {
      log.fatal({ err: e.message }, 'certificate problem');
      process.stderr.write(`keyport: ${e.message}\n`);
      return 78;
    }
    throw e;
  }
  if (command === 'certs') {
    const p = certPaths(config.tls.certsDir);
    process.stdout.write(`certificates ready in ${config.tls.certsDir}\n  CA for clients: ${p.caCert}\n  token certificate for registries: ${p.tokenCert}\n`);
    return 0;
  }

  if (command === 'token' || command === 'registry') {
    const workers = resolveWorkers(command === 'token' ? config.token.workers : config.registry.workers);
    if (workers > 1 && !isClusterWorker()) {
      // Ready means every worker listens, not just the first (which opens the port).
      const listening = workersListening(workers);
      const primary = runPrimary(workers, command, log);
      guardProcess(log, { drain: () => primary.stop('uncaughtException') });
      const ready = Promise.race([listening.then(() => true), primary.done.then(() => false)]);
      let metrics: { close(): unknown } | undefined;
      const metricsAt = command === 'registry'
        ? { bind: config.registry.metricsBind, port: config.registry.metricsPort }
        : { bind: config.token.metricsBind, port: config.token.metricsPort };
      if (metricsAt.port > 0) {
        const { startMetricsServer } = await import('./metrics/server.js');
        const { loadServerTls } = await import('./tls/certificates.js');
        metrics = await startMetricsServer(metricsAt, loadServerTls(config.tls.certsDir), log, true);
      }
      void ready.then((up) => (up ? notifyReady(log, `${command}: ${workers} workers listening`) : undefined));
      await primary.done;
      metrics?.close();
      return 0;
    }
  }

  const running: Running[] = [];
  const shutdown = shutdownOnSignals(running, log);
  guardProcess(log, { drain: () => shutdown.stop('uncaughtException') });
  try {
    if (command === 'token' || command === 'start') {
      const { runTokenServer } = await import('./token/index.js');
      running.push(await runTokenServer(config, log));
    }
    if (command === 'registry' || command === 'start') {
      const { runRegistry } = await import('./registry/index.js');
      running.push(await runRegistry(config, log));
    }
  } catch (e) {
    log.fatal({ err: e }, 'start-up failed');
    process.stderr.write(`keyport: start-up failed: ${(e as Error).message}\n`);
    await Promise.allSettled(running.map((r) => r.close()));
    return 1;
  }
  if (!isClusterWorker()) void notifyReady(log, `${running.map((r) => r.name).join(' and ')} listening`);
  await shutdown.done;
  return 0;
}

function serverNames(config: Config): string[] {
  const names = [...config.tls.names];
  if (config.publicHost) names.push(config.publicHost);
  if (config.bind !== '0.0.0.0' && config.bind !== '::') names.push(config.bind);
  return names;
}

/** Closes every running server on SIGTERM/SIGINT or stop(); `done` settles when they are closed. */
function shutdownOnSignals(running: Running[], log: Logger): { done: Promise<void>; stop(reason: string): Promise<void> } {
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let stopping = false;
  const stop = (reason: string) => {
    if (!stopping) {
      stopping = true;
      log.info({ signal: reason }, 'shutting down');
      void Promise.allSettled(running.map((r) => r.close())).then(() => resolveDone());
    }
    return done;
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  return { done, stop };
}

/**
 * The effective configuration as a file `--config` accepts: every setting, without the
 * derived values (realm and advertised host are computed again on load) and without
 * secrets, which stay where they were set (the environment file, say).
 */
function printableConfig(config: Config): unknown {
  const out: Record<string, unknown> = {};
  for (const { key, sensitive } of settings()) {
    if (sensitive) continue;
    const parts = key.split('.');
    let from: unknown = config;
    for (const p of parts) from = (from as Record<string, unknown>)[p];
    let o = out;
    for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[parts[parts.length - 1]!] = from;
  }
  return out;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`keyport: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
