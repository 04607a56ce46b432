import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { grantedActions, type Credentials } from '../client/auth.js';
import { LoginError, RegistryRequestError } from '../client/errors.js';
import { ConnectionError, HttpTransport } from '../client/http.js';
import { RegistryClient } from '../client/registry.js';
import { trustedCertificates } from '../client/trust.js';
import { ConfigError, loadConfig, type Config } from '../config/load.js';
import { runCheck, type CheckResult } from './check.js';
import { copyImage, CopyError, type CopyResult } from './copy.js';
import { CredentialsError, keystoneCredentials, sourceCredentials } from './credentials.js';
import { ManifestError } from './manifest.js';
import { hostPlatform, parsePlatform, type Platform } from './platform.js';
import { silentProgress, terminalProgress } from './progress.js';
import { apiReference, formatReference, parseDestination, parseSource, ReferenceError, registryApiHost } from './reference.js';

export const COPY_HELP = `Usage: keyport copy SOURCE DEST [options]

Copies an image into this Keyport, logged in as a Keystone user through its token
server, so the user's access applies. The destination tag is written last.

  SOURCE  docker://HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]   an image on any registry
          REPOSITORY[:TAG|@DIGEST]                        an image on this Keyport
  DEST    REPOSITORY:TAG                                  on this Keyport

Options:
  --check CMD                 run CMD with sh -c first (KEYPORT_SOURCE, KEYPORT_DIGEST and
                              KEYPORT_DEST set); a non-zero exit copies nothing
  --all-platforms             copy a multi-platform index with every platform
  --platform OS/ARCH[/VAR]    the platform taken from an index otherwise (default: this host's)
  --referrers                 copy the referrers (signatures, SBOMs, attestations) too
  --json                      print one JSON line with the result
  -u, --username USER         Keystone user (else KEYPORT_USERNAME, else asked)
  --password-stdin            read the password from standard input (else KEYPORT_PASSWORD, else asked)
  --src-creds USER[:PASSWORD] log in to a SOURCE registry that needs it
  --src-ca-file FILE          CA certificates (PEM) for a SOURCE registry
  -c, --config FILE           the configuration naming this Keyport (publicHost, registry.port, tls.certsDir)
  -h, --help                  show this help

Exit status: 0 copied, 1 refused or failed (nothing tagged), 2 bad usage, 78 bad configuration.
`;

export interface CopyIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}

/** A refusal or failure that ends the copy with exit status 1 and this message. */
class Refused extends Error {
  constructor(
    message: string,
    readonly check?: CheckResult,
  ) {
    super(message);
  }
}

interface Args {
  source: string;
  dest: string;
  check?: string;
  allPlatforms: boolean;
  platform: Platform;
  referrers: boolean;
  json: boolean;
  username?: string;
  passwordStdin: boolean;
  srcCreds?: string;
  srcCaFile?: string;
  config?: string;
}

function parse(argv: string[]): Args | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        check: { type: 'string' },
        'all-platforms': { type: 'boolean', default: false },
        platform: { type: 'string' },
        referrers: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        username: { type: 'string', short: 'u' },
        'password-stdin': { type: 'boolean', default: false },
        'src-creds': { type: 'string' },
        'src-ca-file': { type: 'string' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (parsed.positionals.length !== 2) throw new UsageError(`give SOURCE and DEST (got ${parsed.positionals.length} arguments)`);
  if (v['all-platforms'] && v.platform) throw new UsageError('--all-platforms and --platform exclude each other');
  let platform: Platform;
  try {
    platform = v.platform ? parsePlatform(v.platform) : hostPlatform();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return {
    source: parsed.positionals[0]!,
    dest: parsed.positionals[1]!,
    ...(v.check !== undefined ? { check: v.check } : {}),
    allPlatforms: v['all-platforms']!,
    platform,
    referrers: v.referrers!,
    json: v.json!,
    ...(v.username !== undefined ? { username: v.username } : {}),
    passwordStdin: v['password-stdin']!,
    ...(v['src-creds'] !== undefined ? { srcCreds: v['src-creds'] } : {}),
    ...(v['src-ca-file'] !== undefined ? { srcCaFile: v['src-ca-file'] } : {}),
    ...(v.config !== undefined ? { config: v.config } : {}),
  };
}

/** host[:port] of this Keyport's registry as clients reach it. */
export function keyportRegistryHost(config: Config): string {
  const h = config.advertisedHost;
  return `${h.includes(':') ? `[${h}]` : h}:${config.registry.port}`;
}

/** The CA file of a configured upstream whose URL names this registry host, if any. */
export function upstreamCaFile(config: Config, host: string): string | undefined {
  for (const u of config.upstreams) {
    if (!u.caFile) continue;
    if (new URL(u.url).host === host) return u.caFile;
  }
  return undefined;
}

function clientError(e: unknown): string | undefined {
  if (e instanceof LoginError || e instanceof ConnectionError || e instanceof CopyError || e instanceof ManifestError || e instanceof CredentialsError) return e.message;
  if (e instanceof RegistryRequestError) return e.message;
  return undefined;
}

export async function runCopy(argv: string[], io: CopyIo): Promise<number> {
  let args: Args | 'help';
  try {
    args = parse(argv);
  } catch (e) {
    io.stderr.write(`keyport copy: ${(e as Error).message}\n\n${COPY_HELP}`);
    return 2;
  }
  if (args === 'help') {
    io.stdout.write(COPY_HELP);
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig({ ...(args.config ? { file: args.config } : {}), env: io.env });
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr.write(`keyport copy: ${e.message}\n`);
      return 78;
    }
    throw e;
  }
  let source: ReturnType<typeof parseSource>;
  let dest: ReturnType<typeof parseDestination>;
  try {
    source = parseSource(args.source);
    dest = parseDestination(args.dest);
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    io.stderr.write(`keyport copy: ${e.message}\n`);
    return 2;
  }

  const keyportHost = keyportRegistryHost(config);
  const destination = `${keyportHost}/${dest.repository}:${dest.tag}`;
  const json = args.json;
  const report = (line: Record<string, unknown>) => {
    if (json) io.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const transports: HttpTransport[] = [];
  try {
    const result = await copyWith(args, config, source, dest, keyportHost, destination, io, transports);
    const { blobs } = result.copy;
    report({
      source: args.source,
      destination,
      digest: result.copy.digest,
      mediaType: result.copy.mediaType,
      platforms: result.copy.platforms,
      blobs,
      bytes: result.copy.bytes,
      manifests: result.copy.manifests,
      referrers: result.copy.referrers,
      ...(result.check ? { check: { exitCode: result.check.exitCode } } : {}),
    });
    if (!json) {
      io.stdout.write(
        `${destination} ${result.copy.digest} (blobs: ${blobs.copied} copied, ${blobs.mounted} mounted, ${blobs.present} already there` +
          `${result.copy.referrers ? `; ${result.copy.referrers} referrers` : ''})\n`,
      );
    }
    return 0;
  } catch (e) {
    const message = e instanceof Refused ? e.message : clientError(e);
    if (message === undefined) throw e;
    io.stderr.write(`keyport copy: ${message}\n`);
    const check = e instanceof Refused ? e.check : undefined;
    report({
      source: args.source,
      destination,
      error: message,
      ...(check ? { check: { exitCode: check.exitCode, signal: check.signal, output: check.output } } : {}),
    });
    return 1;
  } finally {
    for (const t of transports) t.close();
  }
}

async function copyWith(
  args: Args,
  config: Config,
  source: ReturnType<typeof parseSource>,
  dest: ReturnType<typeof parseDestination>,
  keyportHost: string,
  destination: string,
  io: CopyIo,
  transports: HttpTransport[],
): Promise<{ copy: CopyResult; check?: CheckResult }> {
  const user = await keystoneCredentials({ ...(args.username !== undefined ? { username: args.username } : {}), passwordStdin: args.passwordStdin }, io.env, io.stdin, io.stderr);
  const sourceHost = source.registry ? registryApiHost(source.registry) : keyportHost;
  const sameRegistry = sourceHost === keyportHost;

  const userAgent = 'keyport-copy';
  const ownCa = path.join(config.tls.certsDir, 'ca.crt');
  const keyportTransport = new HttpTransport({ ca: trustedCertificates(fs.existsSync(ownCa) ? [ownCa] : [], io.env), userAgent, idleTimeoutMs: 120_000 });
  transports.push(keyportTransport);
  const destScopes = [`repository:${dest.repository}:pull,push`];
  if (sameRegistry) destScopes.unshift(`repository:${source.repository}:pull`);
  const destClient = new RegistryClient({ url: `https://${keyportHost}`, transport: keyportTransport, credentials: user, scopes: destScopes });

  let sourceClient = destClient;
  if (!sameRegistry) {
    const caFiles = [args.srcCaFile, upstreamCaFile(config, sourceHost)].filter((f): f is string => !!f);
    const sourceTransport = new HttpTransport({ ca: trustedCertificates(caFiles, io.env), userAgent, idleTimeoutMs: 120_000 });
    transports.push(sourceTransport);
    let creds: Credentials | undefined;
    if (args.srcCreds !== undefined) creds = await sourceCredentials(args.srcCreds, sourceHost, io.stdin, io.stderr);
    sourceClient = new RegistryClient({ url: `https://${sourceHost}`, transport: sourceTransport, ...(creds ? { credentials: creds } : {}), scopes: [`repository:${source.repository}:pull`] });
  }

  await destClient.login();
  // The token server decides; say plainly what it refused before anything is read or run.
  const granted = destClient.granted;
  if (granted) {
    const onDest = grantedActions(granted, dest.repository);
    if (!onDest.has('push')) {
      throw new Refused(`${user.username} may not push to ${dest.repository} on ${keyportHost} (granted: ${[...onDest].join(', ') || 'nothing'}); nothing was copied`);
    }
    if (sameRegistry && !grantedActions(granted, source.repository).has('pull')) {
      throw new Refused(`${user.username} may not pull ${source.repository} on ${keyportHost}; nothing was copied`);
    }
  }
  if (!sameRegistry) await sourceClient.login();

  const progress = io.stderr.isTTY ? terminalProgress(io.stderr) : undefined;
  let check: CheckResult | undefined;
  try {
    const copy = await copyImage({
      source: { client: sourceClient, repository: source.repository, reference: apiReference(source) },
      dest: { client: destClient, repository: dest.repository, tag: dest.tag },
      sameRegistry,
      allPlatforms: args.allPlatforms,
      platform: args.platform,
      referrers: args.referrers,
      progress: progress ?? silentProgress,
      ...(args.check !== undefined
        ? {
            check: async (digest: string) => {
              const pinned = formatReference(source.registry ?? keyportHost, source.repository, { digest });
              progress?.step(`checking ${pinned}`);
              check = await runCheck({ command: args.check!, source: pinned, digest, dest: destination }, io.stderr, io.env);
              if (!check.passed) {
                const how = check.exitCode !== null ? `exit status ${check.exitCode}` : `signal ${check.signal}`;
                throw new Refused(`the check failed (${how}); nothing was copied`, check);
              }
            },
          }
        : {}),
    });
    return { copy, ...(check ? { check } : {}) };
  } finally {
    progress?.end();
  }
}
