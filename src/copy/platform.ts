import type { Descriptor } from '../client/registry.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Node's process.arch in the GOARCH names image indexes use. */
const ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** The platform images for this host are built for (containers are Linux images even on other systems). */
export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch;
  if (architecture === 'arm') {
    const v = (process.config.variables as { arm_version?: string }).arm_version;
    return { os: 'linux', architecture, ...(v ? { variant: `v${v}` } : {}) };
  }
  return { os: 'linux', architecture };
}

export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new Error(`--platform: give os/architecture[/variant], e.g. linux/arm64, not ${JSON.stringify(text)}`);
  }
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

export function formatPlatform(p: { os?: string; architecture?: string; variant?: string } | undefined): string {
  if (!p) return 'unknown';
  return [p.os ?? 'unknown', p.architecture ?? 'unknown', ...(p.variant ? [p.variant] : [])].join('/');
}

/**
 * The index entry for a platform. A wanted variant must match; without one, an entry
 * without a variant is preferred, then arm64's v8 (the same thing), then the first.
 */
export function selectPlatform(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  const same = manifests.filter((m) => m.platform?.os === want.os && m.platform?.architecture === want.architecture);
  if (want.variant) return same.find((m) => m.platform?.variant === want.variant);
  return same.find((m) => !m.platform?.variant) ?? same.find((m) => m.platform?.variant === 'v8') ?? same[0];
}
