/**
 * A sweep beyond one machine (docs/experiments.md "Many machines"): the submitter
 * (`hugevisor sweep SPEC --queue redis://HOST:PORT`) puts the points its database does not
 * hold on a BullMQ queue in Redis; `hugevisor worker --queue redis://HOST:PORT`, any number
 * of them on any machines, take one point at a time and run it with the same function as a
 * local pool thread (src/experiments/worker.ts, on one thread of its own so the job's lock
 * is renewed while the point runs), and hand back its outcome. The submitter hears of each
 * finished job (QueueEvents, and a periodic look at the finished jobs so that none is
 * missed), stores it as a local sweep does (src/experiments/pool.ts), and removes the job.
 * A worker that dies mid-point stops renewing its job's lock: another worker's stalled-job
 * check puts the job back on the queue and some worker runs the point again.
 */
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Piscina } from 'piscina';
import { pointTask, workerModule, type Settle } from './pool.ts';
import type { Point, Sweep } from './spec.ts';
import type { PointOutcome, PointTask } from './worker.ts';

/** The queue every submitter and worker of a Redis server shares. */
export const QUEUE_NAME = 'hugevisor-points';

/** A job's data: the point's task (guest bytes included: a worker's machine need not have the file) in wire form. */
interface PointJobData {
  key: string;
  label: string;
  guestSha256: string;
  task: string;
}

function connection(url: string) {
  // Workers block on Redis; BullMQ requires commands to wait for a reconnection rather than fail.
  return { url, maxRetriesPerRequest: null };
}

/**
 * JSON that keeps what a task and an outcome hold beyond plain JSON: bigint (u64 guest
 * arguments), bytes (the guest), and the numbers JSON cannot write (NaN, ±Infinity, -0), so
 * the submitter stores exactly what a pool thread would have handed back.
 */
export function toWire(v: unknown): string {
  return JSON.stringify(v, function (this: Record<string, unknown>, k: string, value: unknown) {
    const raw = this[k];
    if (typeof raw === 'bigint') return { $hv: 'bigint', v: raw.toString() };
    if (raw instanceof Uint8Array) return { $hv: 'bytes', v: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
    if (typeof raw === 'number' && (!Number.isFinite(raw) || Object.is(raw, -0))) return { $hv: 'number', v: Object.is(raw, -0) ? '-0' : String(raw) };
    return value;
  });
}

export function fromWire<T>(s: string): T {
  return JSON.parse(s, (_k, v) => {
    if (v && typeof v === 'object' && typeof v.$hv === 'string' && typeof v.v === 'string' && Object.keys(v).length === 2) {
      if (v.$hv === 'bigint') return BigInt(v.v);
      if (v.$hv === 'bytes') return new Uint8Array(Buffer.from(v.v, 'base64'));
      if (v.$hv === 'number') return v.v === '-0' ? -0 : Number(v.v);
    }
    return v;
  }) as T;
}

/**
 * Enqueue `todo` and settle each point as its job finishes. A job's id is the point's key
 * under a prefix naming this database (host and path), so a submitter rerun after a crash
 * finds its points' jobs again (queued, running or finished meanwhile) instead of adding
 * them twice. Returns once every point is settled.
 */
export async function runOnQueue(url: string, dbPath: string, sweep: Sweep, todo: Point[], settle: Settle): Promise<void> {
  const prefix = createHash('sha256').update(`${hostname()}\0${resolve(dbPath)}`).digest('hex').slice(0, 16);
  const pending = new Map<string, Point>(todo.map((p) => [`${prefix}-${p.key}`, p]));
  const queue = new Queue(QUEUE_NAME, { connection: connection(url) });
  const events = new QueueEvents(QUEUE_NAME, { connection: connection(url) });
  let wake: () => void = () => {};
  let failure: Error | null = null;
  const handling = new Set<string>();

  /** Store (or report) a finished job of ours once, then remove it from Redis. */
  const handle = async (id: string, job?: Job): Promise<void> => {
    const p = pending.get(id);
    if (!p || handling.has(id)) return;
    handling.add(id);
    try {
      const j = job ?? (await queue.getJob(id));
      if (!j) return;
      const state = await j.getState();
      if (state === 'completed') {
        const rv = j.returnvalue as unknown;
        settle.done(p, fromWire<PointOutcome>(typeof rv === 'string' ? rv : JSON.stringify(rv)));
      } else if (state === 'failed') settle.failed(p, new Error(j.failedReason || 'failed on a worker'));
      else return;
      pending.delete(id);
      await j.remove().catch(() => {});
    } catch (e) {
      failure ??= e instanceof Error ? e : new Error(String(e));
    } finally {
      handling.delete(id);
      wake();
    }
  };
  /** Every finished job of ours not yet handled (events missed while connecting or reconnecting). */
  const sweepFinished = async (): Promise<void> => {
    for (const state of ['completed', 'failed'] as const) {
      const n = await queue.getJobCountByTypes(state);
      for (let start = 0; start < n; start += 500) {
        for (const j of await queue.getJobs([state], start, start + 499, true)) if (j?.id && pending.has(j.id)) await handle(j.id, j);
      }
    }
  };

  try {
    // A dropped connection is retried by the client; events missed meanwhile are found by sweepFinished.
    events.on('error', () => {});
    events.on('completed', ({ jobId }) => void handle(jobId));
    events.on('failed', ({ jobId }) => void handle(jobId));
    await events.waitUntilReady();
    await queue.waitUntilReady();
    const list = [...pending];
    for (let i = 0; i < list.length; i += 500) {
      await queue.addBulk(
        list.slice(i, i + 500).map(([id, p]) => ({
          name: p.label,
          data: {
            key: p.key,
            label: p.label,
            guestSha256: p.guestSha256,
            task: toWire({ ...pointTask(sweep, p), guestBytes: new Uint8Array(readFileSync(p.guestPath)) } satisfies PointTask),
          } satisfies PointJobData,
          // Kept when finished until this submitter has stored them; a submitter that died leaves them a week.
          opts: { jobId: id, attempts: 1, removeOnComplete: { age: 7 * 86400 }, removeOnFail: { age: 7 * 86400 } },
        })),
      );
    }
    while (pending.size > 0) {
      if (failure) throw failure;
      await sweepFinished();
      if (pending.size === 0 || failure) continue;
      await new Promise<void>((r) => {
        const t = setTimeout(r, 2000);
        wake = () => (clearTimeout(t), r());
      });
    }
    if (failure) throw failure;
  } finally {
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
  }
}

export interface WorkerEvents {
  ready?(info: { queue: string; pid: number }): void;
  started?(d: { key: string; label: string; attempt: number }): void;
  done?(d: { key: string; label: string }, o: PointOutcome): void;
  failed?(d: { key: string; label: string }, error: Error): void;
  error?(error: Error): void;
}

/**
 * Serve the queue at `url` until `stop` resolves: one point at a time, each on this
 * process's one pool thread (created, run, closed), its outcome handed back as the job's
 * return value. `stallSeconds` is the job lock's lifetime: a worker silent that long (dead)
 * loses its point to another worker, whose stalled-job check runs every half of it.
 */
export async function serveQueue(url: string, opts: { stallSeconds: number; stop: Promise<unknown>; events?: WorkerEvents }): Promise<void> {
  const ev = opts.events ?? {};
  const pool = new Piscina<PointTask, PointOutcome>({ filename: workerModule(), minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 1, idleTimeout: Infinity });
  const lockMs = Math.round(opts.stallSeconds * 1000);
  const worker = new Worker<PointJobData, string>(
    QUEUE_NAME,
    async (job) => {
      const d = job.data;
      ev.started?.({ key: d.key, label: d.label, attempt: job.attemptsStarted });
      const task = fromWire<PointTask>(d.task);
      const sha = task.guestBytes ? createHash('sha256').update(task.guestBytes).digest('hex') : '';
      if (sha !== d.guestSha256) throw new Error(`guest bytes of ${d.label} do not hash to ${d.guestSha256}`);
      try {
        const o = await pool.run(task);
        ev.done?.(d, o);
        return toWire(o);
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        ev.failed?.(d, error);
        throw error;
      }
    },
    {
      connection: connection(url),
      concurrency: 1,
      lockDuration: lockMs,
      stalledInterval: Math.max(500, Math.round(lockMs / 2)),
      // A point whose worker died is put back this many times before it counts as failed.
      maxStalledCount: 3,
      autorun: false,
    },
  );
  worker.on('error', (e) => ev.error?.(e));
  try {
    await worker.waitUntilReady();
    ev.ready?.({ queue: url, pid: process.pid });
    const running = worker.run();
    await Promise.race([opts.stop, running]);
    await worker.close();
    await running;
  } finally {
    await worker.close().catch(() => {});
    await pool.destroy();
  }
}
