import crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { isValidTag, parseDigest, type Digest } from '../../oci/reference.js';
import { PathNotFoundError, StorageUnavailableError, type StorageDriver } from '../../storage/driver.js';
import { InUseMarkers } from '../../gc/protocol.js';
import { DescriptorSizeMismatch, DigestMismatch, ManifestBlobUnknown, ManifestUnknown, NameUnknown, ReferenceInvalid } from './errors.js';
import { artifactTypeOf, parseManifest, type Descriptor, type ParsedManifest, type Target } from '../manifest.js';
import type { BlobStore } from './blobs.js';
import { linkPresent, readLink } from './links.js';
import { paths } from './paths.js';

export interface StoredManifest {
  digest: Digest;
  body: Buffer;
  mediaType: string;
  parsed: ParsedManifest;
}

/** A stored manifest, and the manifest its tag pointed at before, when the push moved a tag. */
export interface PutManifest extends StoredManifest {
  replaced?: Digest;
}

/** What a delete removed: the manifest (by tag: the one the tag pointed at) and the tags. */
export interface DeletedManifest {
  digest: Digest;
  tags: string[];
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

/**
 * Parses a manifest reference (tag or digest) from a URL; undefined when it is neither
 * a valid tag nor a supported digest. Nothing can be stored under such a reference, so
 * reads and deletes answer MANIFEST_UNKNOWN for it, as for any reference not there.
 */
export function parseReference(ref: string): Reference | undefined {
  if (ref.includes(':')) {
    const digest = parseDigest(ref);
    return digest ? { kind: 'digest', digest } : undefined;
  }
  return isValidTag(ref) ? { kind: 'tag', tag: ref } : undefined;
}

/** The reference a manifest is pushed to; a malformed one is the client's mistake (400). */
export function pushReference(ref: string): Reference {
  const parsed = parseReference(ref);
  if (parsed) return parsed;
  throw new ReferenceInvalid(ref, ref.includes(':') ? 'digest' : 'tag');
}

/**
 * Manifests, tags and the referrers index of each repository. A manifest's bytes are
 * stored as a blob (so they are served byte for byte and deduplicated); the repository
 * holds a revision link, tags point at revisions, and manifests with a subject are
 * listed under that subject for the referrers API.
 */
export class ManifestStore {
  private readonly inUse: InUseMarkers;
  /**
   * Manifests read lately, by digest. A digest names its bytes, so an entry can never be
   * stale; whether the repository still holds the manifest is decided by its revision
   * link, which get() reads every time (other instances may delete it). Bounded by
   * bytes, twice the body's length standing in for the parsed form.
   */
  private readonly recent = new LRUCache<string, { body: Buffer; parsed: ParsedManifest }>({
    maxSize: 32 * 1024 * 1024,
    sizeCalculation: (m) => 2 * m.body.length + 1,
  });

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    gcClaimWindowMs?: number,
  ) {
    this.inUse = new InUseMarkers(driver, gcClaimWindowMs);
  }

  /**
   * Stores a manifest under its digest and, for a tag reference, the tag. A push
   * checks first that the repository holds every target; the pull-through cache
   * passes `checkTargets: false`, because it brings a manifest in before its blobs
   * (each is fetched when first asked for).
   */
  async put(name: string, ref: Reference, body: Buffer, contentType: string | undefined, opts: { checkTargets?: boolean } = {}): Promise<PutManifest> {
    const parsed = parseManifest(body, contentType);
    const algorithm = ref.kind === 'digest' ? ref.digest.algorithm : 'sha256';
    const hex = crypto.createHash(algorithm).update(body).digest('hex');
    const digest: Digest = { algorithm, hex, value: `${algorithm}:${hex}` };
    if (ref.kind === 'digest' && ref.digest.hex !== hex) {
      throw new DigestMismatch(ref.digest.value, 'manifest digest does not match the reference');
    }
    // Online GC may run on another instance: claim every digest (and the tag, against
    // retention) first, then check it (see src/gc/protocol.ts for why this order makes
    // the pair safe).
    const claimed = [digest, ...parsed.blobs.map((t) => t.digest), ...parsed.manifests.map((t) => t.digest)];
    for (let attempt = 1; ; attempt++) {
      const claimedAt = await this.inUse.claim(claimed, ref.kind === 'tag' ? { name, tag: ref.tag } : undefined);
      if (opts.checkTargets !== false) {
        await this.checkTargets(parsed.blobs, (d) => this.blobs.describe(name, d));
        await this.checkTargets(parsed.manifests, (d) => this.storedManifestSize(name, d));
      }
      if (this.inUse.stillFresh(claimedAt)) break;
      if (attempt === 3) throw new StorageUnavailableError('the store is too slow to check a manifest\'s blobs within the GC claim window');
    }
    await this.blobs.putSmall(digest, body);
    await this.driver.putContent(paths.revisionLink(name, digest), Buffer.from(digest.value));
    if (parsed.subject) {
      const entry: Descriptor = { mediaType: parsed.mediaType, digest: digest.value, size: body.length };
      const artifactType = artifactTypeOf(parsed);
      if (artifactType) entry.artifactType = artifactType;
      if (parsed.annotations) entry.annotations = parsed.annotations;
      await this.driver.putContent(paths.referrer(name, parsed.subject, digest), Buffer.from(JSON.stringify(entry)));
    }
    let replaced: Digest | undefined;
    if (ref.kind === 'tag') {
      // Read for the audit log only: a concurrent push to the same tag may name another
      // previous digest, but each push still names the one its own write replaced or
      // one replaced just before it.
      replaced = await readLink(this.driver, paths.tagCurrent(name, ref.tag));
      await this.driver.putContent(paths.tagIndex(name, ref.tag, digest), Buffer.from(digest.value));
      await this.driver.putContent(paths.tagCurrent(name, ref.tag), Buffer.from(digest.value));
    }
    const stored: PutManifest = { digest, body, mediaType: parsed.mediaType, parsed };
    if (replaced && replaced.value !== digest.value) stored.replaced = replaced;
    return stored;
  }

  /**
   * Every target must be in the repository (else MANIFEST_BLOB_UNKNOWN, which the spec
   * requires for missing content, so it is checked for all targets before any size)
   * and of the size its descriptor declares (else MANIFEST_INVALID naming the
   * descriptor): a client that trusts the size would fail on pull. The sizes come from
   * the stat that tells presence, so no blob is read; each digest is looked up once.
   */
  private async checkTargets(targets: Target[], sizeOf: (d: Digest) => Promise<number | undefined>): Promise<void> {
    const stored = new Map<string, number | undefined>();
    for (const t of targets) {
      if (!stored.has(t.digest.value)) stored.set(t.digest.value, await sizeOf(t.digest));
      if (stored.get(t.digest.value) === undefined) throw new ManifestBlobUnknown(t.digest.value);
    }
    for (const t of targets) {
      const size = stored.get(t.digest.value)!;
      if (size !== t.size) throw new DescriptorSizeMismatch(t.field, t.digest.value, t.size, size);
    }
  }

  /** Size of a manifest stored in this repository, or undefined when it has none. */
  private async storedManifestSize(name: string, d: Digest): Promise<number | undefined> {
    if (!(await linkPresent(this.driver, paths.revisionLink(name, d)))) return undefined;
    return this.blobs.size(d);
  }

  /** The digest a reference points at in this repository, or undefined. */
  async resolve(name: string, ref: Reference): Promise<Digest | undefined> {
    const digest = ref.kind === 'tag' ? await readLink(this.driver, paths.tagCurrent(name, ref.tag)) : ref.digest;
    if (!digest) return undefined;
    return (await linkPresent(this.driver, paths.revisionLink(name, digest))) ? digest : undefined;
  }

  async get(name: string, ref: Reference): Promise<StoredManifest> {
    const digest = await this.resolve(name, ref);
    const refText = ref.kind === 'tag' ? ref.tag : ref.digest.value;
    if (!digest) throw new ManifestUnknown(refText);
    const known = this.recent.get(digest.value);
    if (known) return { digest, body: known.body, mediaType: known.parsed.mediaType, parsed: known.parsed };
    let body: Buffer;
    try {
      body = await this.blobs.read(digest);
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new ManifestUnknown(refText);
      throw e;
    }
    const parsed = parseManifest(body, undefined);
    // Only bytes that match their digest are remembered: a corrupt blob read once must
    // not be served from memory after the store is repaired.
    if (crypto.createHash(digest.algorithm).update(body).digest('hex') === digest.hex) this.recent.set(digest.value, { body, parsed });
    return { digest, body, mediaType: parsed.mediaType, parsed };
  }

  /**
   * By tag: removes the tag only. By digest: removes the revision, every tag pointing
   * at it and its referrers entry. Blob data stays (other manifests may use it).
   */
  async delete(name: string, ref: Reference): Promise<DeletedManifest> {
    if (ref.kind === 'tag') {
      const current = await readLink(this.driver, paths.tagCurrent(name, ref.tag));
      if (!current) throw new ManifestUnknown(ref.tag);
      await this.driver.delete(paths.tag(name, ref.tag));
      return { digest: current, tags: [ref.tag] };
    }
    const digest = ref.digest;
    if (!(await linkPresent(this.driver, paths.revisionLink(name, digest)))) throw new ManifestUnknown(digest.value);
    let subject: Digest | undefined;
    try {
      subject = parseManifest(await this.blobs.read(digest), undefined).subject;
    } catch {
      subject = undefined;
    }
    const tags: string[] = [];
    for (const tag of await this.tags(name).catch(() => [] as string[])) {
      const current = await readLink(this.driver, paths.tagCurrent(name, tag));
      if (current?.value === digest.value) {
        await this.ignoreMissing(this.driver.delete(paths.tag(name, tag)));
        tags.push(tag);
      }
    }
    if (subject) await this.ignoreMissing(this.driver.delete(paths.referrer(name, subject, digest).replace(/\/link$/, '')));
    await this.ignoreMissing(this.driver.delete(paths.revisionLink(name, digest).replace(/\/link$/, '')));
    return { digest, tags };
  }

  private async ignoreMissing(p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (e) {
      if (!(e instanceof PathNotFoundError)) throw e;
    }
  }

  /** Tags of a repository, sorted; NAME_UNKNOWN when the repository does not exist. */
  async tags(name: string): Promise<string[]> {
    let entries: string[];
    try {
      entries = await this.driver.list(paths.tagsRoot(name));
    } catch (e) {
      if (!(e instanceof PathNotFoundError)) throw e;
      if (await this.exists(name)) return [];
      throw new NameUnknown(name);
    }
    const tags: string[] = [];
    for (const p of entries) {
      const tag = p.slice(p.lastIndexOf('/') + 1);
      if (await readLink(this.driver, paths.tagCurrent(name, tag))) tags.push(tag);
    }
    return tags.sort();
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.driver.stat(paths.repository(name));
      return true;
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
  }

  /** Manifests in this repository whose subject is `subject`, optionally of one artifact type. */
  async referrers(name: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    let algs: string[];
    try {
      algs = await this.driver.list(paths.referrersOf(name, subject));
    } catch (e) {
      if (e instanceof PathNotFoundError) return [];
      throw e;
    }
    const out: Descriptor[] = [];
    for (const algDir of algs) {
      let entries: string[];
      try {
        entries = await this.driver.list(algDir);
      } catch (e) {
        if (e instanceof PathNotFoundError) continue;
        throw e;
      }
      for (const dir of entries) {
        try {
          const d = JSON.parse((await this.driver.getContent(`${dir}/link`)).toString('utf8')) as Descriptor;
          if (!artifactType || d.artifactType === artifactType) out.push(d);
        } catch (e) {
          if (!(e instanceof PathNotFoundError) && !(e instanceof SyntaxError)) throw e;
        }
      }
    }
    return out.sort((a, b) => a.digest.localeCompare(b.digest));
  }
}
