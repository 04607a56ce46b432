/** Rewrites the configuration table in README.md from the schema (npm run docs). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { markdownReference } from '../src/config/reference.js';

const readme = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'README.md');
const text = fs.readFileSync(readme, 'utf8');
const next = text.replace(/<!-- config:start -->[\s\S]*<!-- config:end -->/, `<!-- config:start -->\n${markdownReference()}\n<!-- config:end -->`);
fs.writeFileSync(readme, next);
