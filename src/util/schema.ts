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

/**
 * One line per offending path (the first issue at each: a value failing several checks
 * of one field is reported once): `<path>: expected <accepts>, got <value>`, or
 * `<path>: unknown key ...` for a strict object's extra keys.
 */
export function formatZodError(prefix: string, error: z.ZodError): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const iss of error.issues) {
    const at = where(prefix, iss.path);
    if (seen.has(at)) continue;
    seen.add(at);
    if (iss.code === 'unrecognized_keys') lines.push(`${at}: ${iss.message}`);
    else lines.push(`${at}: expected ${iss.message}, got ${show(iss.input)}`);
  }
  return lines.join('; ');
}

/** Parse `value` with `schema`; a ConfigError with formatZodError's message when it does not fit. */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, pathPrefix: string): z.output<S> {
  const r = schema.safeParse(value, { reportInput: true, error: acceptsText });
  if (!r.success) throw new ConfigError(formatZodError(pathPrefix, r.error));
  return r.data;
}

/** An integer in [min, max], one message for every way of missing it. */
export function intRange(min: number, max: number): z.ZodNumber {
  const error = `an integer from ${min} to ${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A strict object whose unknown-key message lists the keys it knows. */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T): z.ZodObject<T, z.core.$strict> {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `${acceptsText(iss)} (known: ${known})` : undefined),
  });
}
