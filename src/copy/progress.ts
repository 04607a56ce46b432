import { formatBytes, type Progress } from './copy.js';

/** No progress output (not a terminal). */
export const silentProgress: Progress = { step() {}, bytes() {} };

/**
 * Progress on a terminal: finished steps as lines, and one status line, redrawn at
 * most ten times a second, with the bytes moved so far.
 */
export function terminalProgress(out: NodeJS.WriteStream): Progress & { end(): void } {
  let moved = 0;
  let drawn = 0;
  let status = false;
  const clear = () => {
    if (status) out.write('\r\x1b[K');
    status = false;
  };
  const draw = () => {
    clear();
    out.write(`  ${formatBytes(moved)} copied`);
    status = true;
    drawn = Date.now();
  };
  return {
    step(message: string) {
      clear();
      out.write(`${message}\n`);
      if (moved > 0) draw();
    },
    bytes(n: number) {
      moved += n;
      if (Date.now() - drawn >= 100) draw();
    },
    end() {
      clear();
    },
  };
}
