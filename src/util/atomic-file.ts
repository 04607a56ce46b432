import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

/**
 * Writes a file so that readers see either the old content or the complete new one:
 * temporary file in the same directory, fsync, rename, fsync of the directory.
 * With `exclusive`, an existing target is never replaced (returns false instead).
 * The file gets exactly `mode` (default 0644), whatever the umask.
 */
export function writeFileAtomicSync(
  file: string,
  data: string | Buffer,
  opts: { mode?: number; exclusive?: boolean } = {},
): boolean {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const mode = opts.mode ?? 0o644;
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    // open() applies the process umask to the mode (systemd units set UMask=0077):
    // set it explicitly so a public certificate stays readable by other users.
    fs.fchmodSync(fd, mode);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    if (opts.exclusive) {
      // link() fails if the target exists, unlike rename().
      try {
        fs.linkSync(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
    } else {
      fs.renameSync(tmp, file);
    }
    syncDir(dir);
    return true;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
