import type { SchemaFragment } from './fragment.js';
import { schema } from './schema.js';

interface Setting {
  key: string;
  env: string;
  default: unknown;
  doc: string;
  sensitive: boolean;
}

/** Every setting of the schema, in schema order. */
export function settings(): Setting[] {
  const out: Setting[] = [];
  const walk = (node: SchemaFragment, prefix: string) => {
    for (const [k, v] of Object.entries(node)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === 'object' && 'doc' in v) {
        const s = v as { env: string; default: unknown; doc: string; sensitive?: boolean };
        out.push({ key, env: s.env, default: s.default, doc: s.doc, sensitive: !!s.sensitive });
      } else if (v && typeof v === 'object') {
        walk(v as SchemaFragment, key);
      }
    }
  };
  walk(schema, '');
  return out;
}

function showDefault(v: unknown): string {
  if (v === '') return '(empty)';
  if (Array.isArray(v)) return v.length ? v.join(',') : '(empty)';
  return String(v);
}

/** The configuration reference as a Markdown table (the README embeds it). */
export function markdownReference(): string {
  const rows = settings().map((s) => `| \`${s.key}\` | \`${s.env}\` | \`${showDefault(s.default)}\` | ${s.doc.replace(/\|/g, '\\|')} |`);
  return ['| Key | Environment variable | Default | Meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** Plain-text listing for `keyport env`. */
export function textReference(): string {
  return settings()
    .map((s) => `${s.env}  (${s.key}, default ${showDefault(s.default)})\n    ${s.doc}\n`)
    .join('\n');
}
