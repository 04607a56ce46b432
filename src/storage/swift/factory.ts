import { StorageError } from '../driver.js';
import { defineDriver } from '../factory.js';
import { prefixProblem } from '../prefix.js';
import { swiftSettings } from './settings.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TEMPURL_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'];

export const swiftFactory = defineDriver({
  name: 'swift',
  section: 'swift',
  settings: swiftSettings,
  problems(s) {
    const out: string[] = [];
    if (!s.authUrl) out.push('storage.swift.authUrl (KEYPORT_SWIFT_AUTH_URL): must be set for the swift driver');
    const appCred = !!(s.applicationCredentialId || s.applicationCredentialName);
    if (appCred) {
      if (!s.applicationCredentialSecret) out.push('storage.swift.applicationCredentialSecret: must be set with an application credential');
      if (!s.applicationCredentialId && !s.username) out.push('storage.swift.username: must be set with applicationCredentialName');
    } else if (!s.username || !s.password) {
      out.push('storage.swift.username and storage.swift.password (or an application credential) must be set for the swift driver');
    }
    if (s.chunkSize < MiB || s.chunkSize > 5 * GiB) out.push('storage.swift.chunkSize (KEYPORT_SWIFT_CHUNK_SIZE): must be between 1 MiB and 5 GiB');
    if (s.redirect && !s.tempUrlKey) out.push('storage.swift.redirect needs storage.swift.tempUrlKey (KEYPORT_SWIFT_TEMPURL_KEY)');
    const bad = s.tempUrlMethods.filter((m) => !TEMPURL_METHODS.includes(m));
    if (bad.length) out.push(`storage.swift.tempUrlMethods: unknown methods ${bad.join(', ')} (allowed: ${TEMPURL_METHODS.join(', ')})`);
    const r = prefixProblem('storage.swift.rootDirectory (KEYPORT_SWIFT_ROOT_DIRECTORY)', s.rootDirectory);
    if (r) out.push(r);
    if (s.container.includes('/')) out.push('storage.swift.container: must not contain "/"');
    return out;
  },
  async create(settings, log) {
    if (!settings.authUrl) throw new StorageError('storage.swift.authUrl is not set');
    // Loaded on demand: a filesystem registry never pays for the cloud clients.
    const { SwiftDriver } = await import('./driver.js');
    return new SwiftDriver({ ...settings, tempUrlMethods: [...settings.tempUrlMethods] }, log.child({ storage: 'swift' }));
  },
});
