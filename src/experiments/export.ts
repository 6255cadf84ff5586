/**
 * `hugevisor results`: a results database as CSV (the scalar columns, one row per point;
 * params as JSON text) or JSON Lines (every column, the JSON ones as objects), filtered by
 * an SQL expression over the columns (docs/experiments.md "The database").
 */
import { COLUMNS, JSON_COLUMNS, openResults, selectPoints } from './store.ts';

export type ExportFormat = 'csv' | 'jsonl';

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? String(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The CSV columns: every column but the config and result JSON. */
export const CSV_COLUMNS: readonly string[] = COLUMNS.filter((c) => c !== 'config' && c !== 'result');

/** The rows of a results database (a folder or the file) as CSV or JSON Lines text. */
export function exportResults(dirOrFile: string, format: ExportFormat, where?: string): string {
  const db = openResults(dirOrFile);
  try {
    const rows = selectPoints(db, where);
    if (format === 'csv') return [CSV_COLUMNS.join(','), ...rows.map((r) => CSV_COLUMNS.map((c) => csvField(r[c])).join(','))].join('\n') + '\n';
    return rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, JSON_COLUMNS.includes(k) && typeof v === 'string' ? JSON.parse(v) : v])))).join('\n') + (rows.length ? '\n' : '');
  } finally {
    db.close();
  }
}
