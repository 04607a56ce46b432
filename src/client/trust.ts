import fs from 'node:fs';
import tls from 'node:tls';

/**
 * The certificates a client trusts: the system store, NODE_EXTRA_CA_CERTS (Node adds
 * it to its default store, but an explicit `ca` list replaces that store, so it is
 * read here too), and the given PEM files.
 */
export function trustedCertificates(files: string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const out = [...tls.rootCertificates];
  const extra = env.NODE_EXTRA_CA_CERTS;
  const all = extra ? [extra, ...files] : files;
  for (const f of all) {
    try {
      out.push(fs.readFileSync(f, 'utf8'));
    } catch (e) {
      throw new Error(`cannot read CA file ${f}: ${(e as Error).message}`);
    }
  }
  return out;
}
