/**
 * What a result records about the tool that produced it: the package version and, when it
 * runs from a git checkout, the commit (read from .git, no subprocess), once per process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface BuildInfo {
  name: string;
  version: string;
  /** The checkout's HEAD commit, or null outside a git checkout (an installed package). */
  commit: string | null;
}

let cached: BuildInfo | null = null;

function headCommit(): string | null {
  const git = join(root, '.git');
  try {
    if (!existsSync(join(git, 'HEAD'))) return null;
    const head = readFileSync(join(git, 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    if (!ref) return null;
    if (existsSync(join(git, ref))) return readFileSync(join(git, ref), 'utf8').trim();
    const packed = existsSync(join(git, 'packed-refs')) ? readFileSync(join(git, 'packed-refs'), 'utf8') : '';
    return new RegExp(`^([0-9a-f]{40}) ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm').exec(packed)?.[1] ?? null;
  } catch {
    return null;
  }
}

export function buildInfo(): BuildInfo {
  if (!cached) {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
    cached = { name: pkg.name, version: pkg.version, commit: headCommit() };
  }
  return cached;
}
