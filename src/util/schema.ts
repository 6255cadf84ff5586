/**
 * Config validation with zod schemas: one schema per config section, owned by the layer
 * that consumes it; this file turns a failed parse into one ConfigError whose message names
 * the path and what it accepts, e.g.
 *
 *   host.thp.enabled: expected always|madvise|never, got "sometimes"
 *
 * The error also carries the path and the detail apart, so a client (the CLI) can name its
 * own spelling of the field (`--thp: expected always|madvise|never, got "sometimes"`).
 */
import type { z } from 'zod';
import { ConfigError } from './errors.ts';

type Issue = z.core.$ZodIssue;
type Key = PropertyKey;

/** 'host.thp.enabled', 'args[3]', or the prefix alone for the root. */
export function formatPath(prefix: string, path: readonly Key[]): string {
  let out = prefix;
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out;
}

/** A value as the message shows it: strings quoted, objects by kind. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function got(issue: Issue): string {
  return 'input' in issue ? `, got ${describe(issue.input)}` : '';
}

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  bigint: 'a bigint',
  function: 'a function',
};

/** The detail of one issue, without its path. */
function detail(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_value':
      return `expected ${issue.values.map(String).join('|')}${got(issue)}`;
    case 'invalid_type':
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}${got(issue)}`;
    case 'too_small':
      if (issue.origin === 'array') return `needs at least ${String(issue.minimum)} entries`;
      return `must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${String(issue.minimum)}${got(issue)}`;
    case 'too_big':
      if (issue.origin === 'array') return `takes at most ${String(issue.maximum)} entries`;
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}${got(issue)}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}${got(issue)}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    case 'invalid_key':
      return `unknown key${got(issue)}`;
    default:
      return issue.message;
  }
}

/**
 * A union's issue: the branch that got furthest (deepest path, or not a plain type mismatch)
 * explains it best; when every branch failed at the root, list what each accepts.
 */
function pickIssue(issue: Issue): { path: Key[]; text: string } {
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const branches = issue.errors.filter((b) => b.length > 0);
    const deep = branches.find((b) => b[0]!.path.length > 0 || b[0]!.code !== 'invalid_type');
    if (deep) {
      const inner = pickIssue(deep[0]!);
      return { path: [...issue.path, ...inner.path], text: inner.text };
    }
    const accepted = branches.map((b) => {
      const i = b[0]!;
      return i.code === 'invalid_type' ? (TYPE_NAMES[i.expected] ?? i.expected) : detail(i);
    });
    return { path: [...issue.path], text: `expected ${accepted.join(' or ')}${got(issue)}` };
  }
  if (issue.code === 'unrecognized_keys' && issue.keys.length === 1) {
    // Name the unknown field itself, so the path points at it.
    return { path: [...issue.path, issue.keys[0]!], text: 'unknown field' };
  }
  if (issue.code === 'invalid_key') {
    // A record key outside its enum (e.g. an unknown TLB structure): point at the key.
    const inner = issue.issues[0];
    return { path: [...issue.path], text: inner && inner.code === 'invalid_value' ? `unknown name (known: ${inner.values.map(String).join(', ')})` : detail(issue) };
  }
  return { path: [...issue.path], text: detail(issue) };
}

/** The ConfigError for a failed parse: the first issue, its path prefixed. */
export function formatZodError(prefix: string, error: z.ZodError): ConfigError {
  const first = error.issues[0];
  if (!first) return new ConfigError(`${prefix || 'config'}: invalid`);
  const { path, text } = pickIssue(first);
  const where = formatPath(prefix, path);
  return new ConfigError(`${where || 'config'}: ${text}`, { path: where, detail: text });
}

/** Parse `value` with `schema`; on failure throw one ConfigError naming the path (prefixed by `pathPrefix`). */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, pathPrefix: string): z.output<S> {
  const r = schema.safeParse(value, { reportInput: true });
  if (!r.success) throw formatZodError(pathPrefix, r.error);
  return r.data;
}
