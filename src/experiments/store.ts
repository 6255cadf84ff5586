/**
 * The results database of a sweep folder: one SQLite file, `results.sqlite`, a row per
 * finished point (docs/experiments.md "The database"). A point's row and its time series
 * are written in one transaction once it finished, in WAL mode, so a sweep killed at any
 * instant leaves every finished point whole and no partial one; its key (src/experiments/
 * spec.ts) makes a rerun skip what is there and never write a point twice.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../api/index.ts';
import type { Point } from './spec.ts';
import type { PointOutcome } from './worker.ts';

export const DB_FILE = 'results.sqlite';
/** PRAGMA user_version of the layout below; a database of another version is refused, not migrated. */
export const DB_SCHEMA_VERSION = 1;

/**
 * Numeric and text columns extracted from the config and result for queries (`--where`,
 * the report); the whole effective config and result are the JSON columns `config` and
 * `result`. Each is [name, SQL type, how to get it].
 */
const EXTRACTED: readonly [string, string, (p: Point, o: PointOutcome) => unknown][] = [
  ['ept', 'INTEGER', (_p, o) => (o.effective.ept ? 1 : 0)],
  ['guest_page_size', 'TEXT', (_p, o) => o.effective.guestPageSize],
  ['memory', 'INTEGER', (_p, o) => o.effective.memory],
  ['thp_enabled', 'TEXT', (_p, o) => o.effective.host?.thp.enabled ?? null],
  ['host_memory', 'INTEGER', (_p, o) => o.effective.host?.memory ?? null],
  ['stop_reason', 'TEXT', (_p, o) => o.result.stopReason],
  ['exit_status', 'INTEGER', (_p, o) => o.result.exitStatus],
  ['instructions', 'INTEGER', (_p, o) => o.result.instructions],
  ['cycles', 'REAL', (_p, o) => o.result.simulated.cycles],
  ['simulated_seconds', 'REAL', (_p, o) => o.result.simulated.seconds],
  ['guest_pf', 'INTEGER', (_p, o) => o.result.rates.events.guest_pf.total],
  ['ept_violations', 'INTEGER', (_p, o) => o.result.rates.events.ept_violations.total],
  ['vm_exits', 'INTEGER', (_p, o) => o.result.rates.events.vm_exits.total],
  ['host_fault_4k', 'INTEGER', (_p, o) => o.result.rates.events.host_fault_4k.total],
  ['host_fault_2m', 'INTEGER', (_p, o) => o.result.rates.events.host_fault_2m.total],
  ['thp_split', 'INTEGER', (_p, o) => o.result.rates.events.thp_split.total],
  ['thp_collapse_alloc', 'INTEGER', (_p, o) => o.result.rates.events.thp_collapse_alloc.total],
  ['dtlb_misses', 'INTEGER', (_p, o) => o.result.rates.tlb.dtlb.misses.total],
  ['dtlb_mpki', 'REAL', (_p, o) => o.result.rates.tlb.dtlb.mpki.total],
  ['stlb_misses', 'INTEGER', (_p, o) => o.result.rates.tlb.stlb.misses.total],
  ['stlb_mpki', 'REAL', (_p, o) => o.result.rates.tlb.stlb.mpki.total],
  ['walks', 'INTEGER', (_p, o) => o.result.rates.walks.walks],
  ['refs_per_walk', 'REAL', (_p, o) => o.result.rates.walks.refs_per_walk],
  ['guest_refs_per_walk', 'REAL', (_p, o) => o.result.rates.walks.guest_refs_per_walk],
  ['ept_refs_per_walk', 'REAL', (_p, o) => o.result.rates.walks.ept_refs_per_walk],
  ['ept_pages_4k', 'INTEGER', (_p, o) => o.result.memory.ept?.pages_4k ?? null],
  ['ept_pages_2m', 'INTEGER', (_p, o) => o.result.memory.ept?.pages_2m ?? null],
];

/** Wall-clock columns: the only ones that differ between two runs of the same point. */
export const TIMING_COLUMNS = ['wall_seconds', 'run_seconds', 'mips', 'started_at', 'finished_at'] as const;

const POINT_COLUMNS: readonly [string, string][] = [
  ['key', 'TEXT PRIMARY KEY'],
  ['sweep', 'TEXT NOT NULL'],
  ['guest', 'TEXT NOT NULL'],
  ['guest_sha256', 'TEXT NOT NULL'],
  ['repeat', 'INTEGER NOT NULL'],
  ['label', 'TEXT NOT NULL'],
  ['params', 'TEXT NOT NULL'],
  ...EXTRACTED.map(([n, t]) => [n, t] as [string, string]),
  ['config', 'TEXT NOT NULL'],
  ['result', 'TEXT NOT NULL'],
  ['wall_seconds', 'REAL'],
  ['run_seconds', 'REAL'],
  ['mips', 'REAL'],
  ['started_at', 'TEXT'],
  ['finished_at', 'TEXT'],
  ['tool_version', 'TEXT'],
  ['tool_commit', 'TEXT'],
  ['result_schema', 'TEXT'],
];

/** The columns of `points`, in order (the CSV export's header without the JSON columns). */
export const COLUMNS: readonly string[] = POINT_COLUMNS.map(([n]) => n);
export const JSON_COLUMNS: readonly string[] = ['params', 'config', 'result'];

const DDL = `
CREATE TABLE IF NOT EXISTS points (
  ${POINT_COLUMNS.map(([n, t]) => `${n} ${t}`).join(',\n  ')}
);
CREATE TABLE IF NOT EXISTS samples (
  point_key TEXT NOT NULL REFERENCES points(key),
  idx INTEGER NOT NULL,
  instructions INTEGER NOT NULL,
  simulated_ns REAL NOT NULL,
  counters TEXT NOT NULL,
  host TEXT,
  rates TEXT NOT NULL,
  PRIMARY KEY (point_key, idx)
);
CREATE TABLE IF NOT EXISTS sweeps (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  spec_path TEXT NOT NULL,
  spec_text TEXT NOT NULL,
  started_at TEXT NOT NULL,
  jobs INTEGER NOT NULL,
  points_total INTEGER NOT NULL,
  points_skipped INTEGER NOT NULL
);
`;

/** `dir/results.sqlite` for a folder, the path itself for a file. */
export function dbPath(dirOrFile: string): string {
  return existsSync(dirOrFile) && statSync(dirOrFile).isDirectory() ? join(dirOrFile, DB_FILE) : dirOrFile;
}

function checkVersion(db: Database.Database, path: string): void {
  const v = db.pragma('user_version', { simple: true }) as number;
  if (v !== DB_SCHEMA_VERSION) throw new ConfigError(`${path}: results database layout ${v}, this hugevisor reads ${DB_SCHEMA_VERSION}`);
}

/** The results database of a sweep's output folder, created if new. */
export class ResultStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly insertPoint: Database.Statement;
  private readonly insertSample: Database.Statement;

  constructor(outDir: string) {
    mkdirSync(outDir, { recursive: true });
    this.path = join(outDir, DB_FILE);
    this.db = new Database(this.path);
    this.db.pragma('journal_mode = WAL');
    // Each point's transaction reaches the disk before the next begins: a finished point survives a power cut too.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    if ((this.db.pragma('user_version', { simple: true }) as number) === 0 && !this.hasTable('points')) {
      this.db.exec(DDL);
      this.db.pragma(`user_version = ${DB_SCHEMA_VERSION}`);
    }
    checkVersion(this.db, this.path);
    this.insertPoint = this.db.prepare(`INSERT INTO points (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => '@' + c).join(', ')}) ON CONFLICT(key) DO NOTHING`);
    this.insertSample = this.db.prepare('INSERT OR IGNORE INTO samples VALUES (@point_key, @idx, @instructions, @simulated_ns, @counters, @host, @rates)');
  }

  private hasTable(name: string): boolean {
    return this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  }

  /** Keys of the points already stored. */
  finishedKeys(): Set<string> {
    return new Set((this.db.prepare('SELECT key FROM points').all() as { key: string }[]).map((r) => r.key));
  }

  recordSweep(s: { name: string; specPath: string; specText: string; jobs: number; total: number; skipped: number }): void {
    this.db
      .prepare('INSERT INTO sweeps (name, spec_path, spec_text, started_at, jobs, points_total, points_skipped) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(s.name, s.specPath, s.specText, new Date().toISOString(), s.jobs, s.total, s.skipped);
  }

  /** A finished point and its time series, in one transaction. */
  readonly add = (sweep: string, p: Point, o: PointOutcome): void => {
    const row: Record<string, unknown> = {
      key: p.key,
      sweep,
      guest: p.guest,
      guest_sha256: p.guestSha256,
      repeat: p.repeat,
      label: p.label,
      params: JSON.stringify(p.params),
      config: JSON.stringify(o.effective),
      result: JSON.stringify(o.result),
      wall_seconds: o.wallSeconds,
      run_seconds: o.runSeconds,
      mips: o.mips,
      started_at: o.startedAt,
      finished_at: o.finishedAt,
      tool_version: o.result.tool.version,
      tool_commit: o.result.tool.commit,
      result_schema: o.result.schema,
    };
    for (const [n, , get] of EXTRACTED) row[n] = get(p, o);
    this.db.transaction(() => {
      this.insertPoint.run(row);
      for (const s of o.samples) {
        this.insertSample.run({
          point_key: p.key,
          idx: s.index,
          instructions: s.instructions,
          simulated_ns: s.simulatedNs,
          counters: JSON.stringify(s.counters),
          host: s.host ? JSON.stringify(s.host) : null,
          rates: JSON.stringify(s.rates),
        });
      }
    })();
  };

  close(): void {
    this.db.close();
  }
}

/** A results database opened read-only (results, report): a query cannot change it. */
export function openResults(dirOrFile: string): Database.Database {
  const path = dbPath(dirOrFile);
  if (!existsSync(path)) throw new ConfigError(`${path}: no such results database`);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    checkVersion(db, path);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${path}: not a results database (${(e as Error).message})`);
  }
  return db;
}

/** Rows of `points`, in sweep order of insertion, filtered by an SQL expression over its columns. */
export function selectPoints(db: Database.Database, where?: string): Record<string, unknown>[] {
  let stmt: Database.Statement;
  try {
    stmt = db.prepare(`SELECT * FROM points${where ? ` WHERE (${where})` : ''} ORDER BY rowid`);
  } catch (e) {
    throw new ConfigError(`--where: ${(e as Error).message} (columns: ${COLUMNS.join(', ')})`);
  }
  return stmt.all() as Record<string, unknown>[];
}
