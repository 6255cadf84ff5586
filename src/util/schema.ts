/**
 * Config validation with zod, one message style for every field: the path, what it
 * accepts, and what it got —
 *
 *   host.thp.enabled: expected always|madvise|never, got "sometimes"
 *   host.swap: unknown key "size" (known: bytes, path)
 *
 * Schemas state what a leaf accepts as its error message ("always|madvise|never", "an
 * integer from 1 to 4294967295"); formatZodError adds the path and the value. Issues
 * zod words itself (a wrong type, an unknown key) get the same shape through the
 * per-parse error map below. parseConfig turns a failure into the project's ConfigError.
 */
import { z } from 'zod';
import { ConfigError } from './errors.ts';

/** A value as a message shows it: strings quoted, objects by kind. */
export function describe(v: unknown): string {
  return show(v);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return typeof v === 'function' ? 'a function' : String(v);
  if (Array.isArray(v)) return 'an array';
  if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) return `an ${v.constructor.name} of ${v.byteLength} bytes`;
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return 'an object';
  }
}

const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

/** zod's own issues in the "accepts" wording (schema-level messages take precedence). */
function acceptsText(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      return article(iss.expected === 'int' ? 'integer' : iss.expected);
    case 'unrecognized_keys':
      return `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_value':
      return iss.values.map((v) => String(v)).join('|');
    case 'too_small':
      return iss.origin === 'array' ? `at least ${iss.minimum} entries` : `a number ${iss.inclusive === false ? '>' : '≥'} ${iss.minimum}`;
    case 'too_big':
      return iss.origin === 'array' ? `at most ${iss.maximum} entries` : `a number ${iss.inclusive === false ? '<' : '≤'} ${iss.maximum}`;
    case 'not_multiple_of':
      return `a multiple of ${iss.divisor}`;
    default:
      return undefined;
  }
}

/** `prefix` then the issue path: `host` + ['thp', 'enabled'] → host.thp.enabled. */
function where(prefix: string, path: PropertyKey[]): string {
  let s = prefix;
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/** One issue as a path and what it says; a union's issue is explained by its best branch. */
function explain(prefix: string, iss: z.core.$ZodIssue): { path: string; detail: string } {
  if (iss.code === 'invalid_union' && iss.errors.length > 0) {
    // The branch that got furthest (a nested path, or more than a type mismatch) explains
    // it; when every branch failed at the root, say what each accepts.
    const branches = iss.errors.filter((b) => b.length > 0);
    const deep = branches.find((b) => b[0]!.path.length > 0 || b[0]!.code !== 'invalid_type');
    if (deep) {
      const inner = explain('', deep[0]!);
      return { path: where(prefix, [...iss.path, ...(inner.path ? inner.path.split('.') : [])]), detail: inner.detail };
    }
    return { path: where(prefix, iss.path), detail: `expected ${branches.map((b) => b[0]!.message).join(' or ')}, got ${show(iss.input)}` };
  }
  if (iss.code === 'invalid_key') {
    // A record key outside its enum (an unknown TLB structure): name the key.
    const inner = iss.issues[0];
    const known = inner && inner.code === 'invalid_value' ? ` (known: ${inner.values.map(String).join(', ')})` : '';
    return { path: where(prefix, iss.path), detail: `unknown key ${show(iss.input)}${known}` };
  }
  const at = where(prefix, iss.path);
  // A section rule (a custom issue marked { rule: true }) is said as it is; a field's
  // refinement is worded as what the field accepts, like every other field.
  if (iss.code === 'unrecognized_keys' || (iss.code === 'custom' && iss.params?.rule === true)) return { path: at, detail: iss.message };
  return { path: at, detail: `expected ${iss.message}, got ${show(iss.input)}` };
}

/**
 * One line per offending path (the first issue at each: a value failing several checks
 * of one field is reported once): `<path>: expected <accepts>, got <value>`, or
 * `<path>: unknown key ...` for a strict object's extra keys.
 */
export function formatZodError(prefix: string, error: z.ZodError): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const iss of error.issues) {
    const { path, detail } = explain(prefix, iss);
    if (seen.has(path)) continue;
    seen.add(path);
    lines.push(`${path || 'config'}: ${detail}`);
  }
  return lines.join('; ');
}

/**
 * Parse `value` with `schema`; a ConfigError with formatZodError's message when it does not
 * fit. The error carries the first issue's path and detail apart, so a client can name its
 * own spelling of the field (the CLI: `--thp: expected always|madvise|never, got "sometimes"`).
 */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, pathPrefix: string): z.output<S> {
  const r = schema.safeParse(value, { reportInput: true, error: acceptsText });
  if (!r.success) throw new ConfigError(formatZodError(pathPrefix, r.error), explain(pathPrefix, r.error.issues[0]!));
  return r.data;
}

/** An integer in [min, max] (a multiple of `step`), one message — what it accepts — for every way of missing it. */
export function intRange(min: number, max: number, opts: { step?: number; accepts?: string } = {}): z.ZodNumber {
  const error = opts.accepts ?? `an integer from ${min} to ${max}`;
  const n = z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
  return opts.step && opts.step > 1 ? n.multipleOf(opts.step, { error }) : n;
}

/** A strict object whose unknown-key message lists the keys it knows. */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T): z.ZodObject<T, z.core.$strict> {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `${acceptsText(iss)} (known: ${known})` : undefined),
  });
}
