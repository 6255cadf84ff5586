/**
 * Sweep specs (docs/experiments.md): a JSON or YAML file naming guests, a base VM config,
 * values to vary (their cartesian product), explicit points and repeats, expanded here into
 * points. Every point's config is checked by the API (resolveConfig) before anything runs,
 * and each point gets its key: a hash of its effective configuration, the guest's bytes and
 * its repeat index, so a result is found again whatever spec or order produced it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, HugevisorError, loadGuest, resolveConfig, sampleNames, samplePath, type EffectiveConfig, type VmConfig } from '../api/index.ts';

/** A value of one varied field, as the spec writes it. */
export type ParamValue = string | number | boolean | null | readonly unknown[] | { readonly [k: string]: unknown };

/** One point of a sweep, checked and keyed. */
export interface Point {
  /** 0-based position in the expanded sweep (spec order). */
  index: number;
  /** The guest as the spec names it (a sample name or a path as written). */
  guest: string;
  /** The ELF file that runs. */
  guestPath: string;
  guestSha256: string;
  /** The values this point sets beyond the base config (varied fields, a point's own config), by dotted path. */
  params: Record<string, ParamValue>;
  repeat: number;
  /** The VM config given to createVm (JSON-able; u64 args as bigint). */
  config: VmConfig;
  effective: EffectiveConfig;
  /** sha256 of the effective config, the guest's bytes and the repeat index. */
  key: string;
  /** `gups ept=true host.thp.enabled=never #1` — for progress lines and messages. */
  label: string;
}

export interface Sweep {
  name: string;
  /** The spec file, and its text as read (recorded with each sweep in the database). */
  specPath: string;
  specText: string;
  points: Point[];
  /** Points of the product that were identical (same key) to an earlier one and run once. */
  duplicates: number;
  /** Time-series interval for every point ({ simulatedNs } or { instructions }), or null. */
  sampleEvery: { simulatedNs: number } | { instructions: number } | null;
}

/** Most spec bytes read (a spec is a few KiB; a runaway file is a mistake). */
const MAX_SPEC_BYTES = 4 << 20;
/** The most points a spec may expand to: beyond it, a product is almost surely a typo. */
export const MAX_POINTS = 100_000;

const u64Arg = z.union([z.number().int().min(0), z.string().regex(/^(0x[0-9a-fA-F]+|\d+)$/, 'a u64: decimal or 0x hex')]);
/** `when`: per varied field, per value (as text), the config fields a guest adds when the field takes that value. */
const whenSchema = z.record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown())));
const guestEntry = z.union([
  z.string().min(1),
  z.strictObject({ guest: z.string().min(1), args: z.array(u64Arg).optional(), config: z.record(z.string(), z.unknown()).optional(), when: whenSchema.optional() }),
]);
const specSchema = z.strictObject({
  name: z.string().min(1).optional(),
  guests: z.array(guestEntry).optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  vary: z.record(z.string(), z.array(z.unknown()).min(1)).optional(),
  points: z.array(z.strictObject({ guest: z.string().min(1), args: z.array(u64Arg).optional(), config: z.record(z.string(), z.unknown()).optional() })).optional(),
  repeats: z.number().int().min(1).max(1000).optional(),
  sampleEvery: z.union([z.strictObject({ simulatedNs: z.number().positive() }), z.strictObject({ instructions: z.number().int().positive() })]).optional(),
});
export type SweepSpec = z.infer<typeof specSchema>;

/** Read a spec file: YAML for .yaml/.yml, JSON otherwise (one ConfigError naming the file on a bad one). */
export function readSpec(path: string): { spec: SweepSpec; text: string } {
  if (!existsSync(path)) throw new ConfigError(`${path}: no such spec file`);
  const st = statSync(path);
  if (!st.isFile()) throw new ConfigError(`${path}: not a regular file`);
  if (st.size > MAX_SPEC_BYTES) throw new ConfigError(`${path}: ${st.size} bytes, larger than a spec can be (at most ${MAX_SPEC_BYTES})`);
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'} (${(e as Error).message.split('\n')[0]})`);
  }
  const r = specSchema.safeParse(raw);
  if (!r.success) {
    const iss = r.error.issues[0]!;
    const where = iss.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    throw new ConfigError(`${path}: ${where || '(top level)'}: ${iss.message}`);
  }
  if (!r.data.guests?.length && !r.data.points?.length) throw new ConfigError(`${path}: names no guests and no points (give "guests" or "points")`);
  return { spec: r.data, text };
}

/** Set a dotted path (host.thp.enabled) in a plain config object, creating sections. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = target;
  for (const p of parts.slice(0, -1)) {
    const next = o[p];
    o = o[p] = next && typeof next === 'object' && !Array.isArray(next) ? { ...(next as object) } : {};
  }
  o[parts[parts.length - 1]!] = value;
}

function deepCopy<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** A JSON value with object keys sorted: the canonical text a key hashes. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/** The key of a point: what runs (effective config), on what (the guest's bytes), which repeat. */
export function pointKey(effective: EffectiveConfig, guestSha256: string, repeat: number): string {
  return createHash('sha256').update(canonical({ config: effective, guest: guestSha256, repeat })).digest('hex');
}

/** Guest args as the API takes them: numbers, and u64 strings beyond 2^53 as bigint. */
function guestArgs(args: readonly (number | string)[]): (number | bigint)[] {
  return args.map((a) => (typeof a === 'number' ? a : BigInt(a) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(BigInt(a)) : BigInt(a)));
}

/** The product of the varied fields, in spec order (the last field varies fastest). */
function product(vary: Record<string, unknown[]>): Record<string, ParamValue>[] {
  let combos: Record<string, ParamValue>[] = [{}];
  for (const [path, values] of Object.entries(vary)) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [path]: v as ParamValue })));
  return combos;
}

function showValue(v: ParamValue): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * Expand a spec into checked, keyed points: guests × the product of `vary` × repeats, then
 * the explicit points × repeats. With `ept: false` a point drops the host section (the host
 * model exists only under EPT), so {EPT off} × {THP never, always} is one EPT-off point: a
 * point whose key repeats an earlier one's is run once (counted in `duplicates`). A bad
 * point is one ConfigError naming the point and the field, before anything runs.
 */
export function expandSpec(specPath: string): Sweep {
  const { spec, text } = readSpec(specPath);
  const dir = dirname(resolve(specPath));
  const guests = new Map<string, { path: string; sha: string }>();
  const guestFile = (g: string, where: string) => {
    let hit = guests.get(g);
    if (hit) return hit;
    const looksLikePath = g.includes('/') || g.endsWith('.elf');
    let path: string;
    if (!looksLikePath && sampleNames().includes(g)) path = samplePath(g);
    else if (looksLikePath) path = resolve(dir, g);
    else throw new ConfigError(`${where}: unknown sample '${g}' (samples: ${sampleNames().join(', ') || 'none built'}; or give a path to an ELF file)`);
    let bytes: Uint8Array;
    try {
      bytes = loadGuest(path, g).bytes;
    } catch (e) {
      throw e instanceof HugevisorError ? new ConfigError(`${where}: ${e.message}`) : e;
    }
    hit = { path, sha: createHash('sha256').update(bytes).digest('hex') };
    guests.set(g, hit);
    return hit;
  };
  const repeats = spec.repeats ?? 1;
  const base = spec.config ?? {};
  const plans: { guest: string; args?: (number | string)[]; own?: Record<string, unknown>; params: Record<string, ParamValue>; implied?: Record<string, unknown> }[] = [];
  for (const g of spec.guests ?? []) {
    const entry = typeof g === 'string' ? { guest: g } : g;
    const when = (entry as { when?: Record<string, Record<string, Record<string, unknown>>> }).when ?? {};
    for (const field of Object.keys(when)) {
      if (!spec.vary || !(field in spec.vary)) throw new ConfigError(`${specPath}: guest ${entry.guest}: when.${field}: not a varied field (vary: ${Object.keys(spec.vary ?? {}).join(', ') || 'none'})`);
    }
    for (const combo of product(spec.vary ?? {})) {
      // A varied value may mean something guest-specific (2 MiB guest pages: a cmdline knob, an argument): `when` adds it, outside the label.
      const implied: Record<string, unknown> = {};
      for (const [field, byValue] of Object.entries(when)) Object.assign(implied, byValue[showValue(combo[field]!)] ?? {});
      plans.push({ guest: entry.guest, args: entry.args, own: entry.config, params: combo, implied });
    }
  }
  for (const p of spec.points ?? []) plans.push({ guest: p.guest, args: p.args, own: p.config, params: {} });
  if (plans.length * repeats > MAX_POINTS) throw new ConfigError(`${specPath}: expands to ${plans.length * repeats} points, more than ${MAX_POINTS}`);

  const points: Point[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let n = 0;
  for (const plan of plans) {
    const config: Record<string, unknown> = deepCopy(base);
    const params: Record<string, ParamValue> = {};
    for (const [k, v] of Object.entries(plan.own ?? {})) {
      setPath(config, k, deepCopy(v));
      params[k] = v as ParamValue;
    }
    if (plan.args) config.args = plan.args;
    for (const [k, v] of Object.entries(plan.params)) {
      setPath(config, k, deepCopy(v));
      params[k] = v;
    }
    for (const [k, v] of Object.entries(plan.implied ?? {})) setPath(config, k, deepCopy(v));
    if (config.ept === false) {
      // No host model without EPT: its knobs are neither run nor part of the point's name.
      delete config.host;
      for (const k of Object.keys(params)) if (k === 'host' || k.startsWith('host.')) delete params[k];
    }
    if (Array.isArray(config.args)) {
      const bad = (config.args as unknown[]).findIndex((a) => !(typeof a === 'number' || (typeof a === 'string' && /^(0x[0-9a-fA-F]+|\d+)$/.test(a))));
      if (bad < 0) config.args = guestArgs(config.args as (number | string)[]);
    }
    const varied = Object.entries(params).map(([k, v]) => `${k}=${showValue(v)}`).join(' ');
    for (let repeat = 0; repeat < repeats; repeat++) {
      const index = n++;
      const label = `${plan.guest}${varied ? ' ' + varied : ''}${repeats > 1 ? ` #${repeat}` : ''}`;
      const where = `point ${index} (${label})`;
      const g = guestFile(plan.guest, where);
      let effective: EffectiveConfig;
      try {
        effective = resolveConfig(config as VmConfig);
      } catch (e) {
        throw e instanceof ConfigError ? new ConfigError(`${where}: ${e.message}`, e.path ? { path: e.path, detail: e.detail } : undefined) : e;
      }
      const key = pointKey(effective, g.sha, repeat);
      if (seen.has(key)) {
        duplicates++;
        continue;
      }
      seen.add(key);
      points.push({ index: points.length, guest: plan.guest, guestPath: g.path, guestSha256: g.sha, params, repeat, config: config as VmConfig, effective, key, label });
    }
  }
  return { name: spec.name ?? basename(specPath, extname(specPath)), specPath: resolve(specPath), specText: text, points, duplicates, sampleEvery: spec.sampleEvery ?? null };
}
