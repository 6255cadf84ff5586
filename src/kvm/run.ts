/**
 * The vCPU run loop: a small explicit state machine (Firecracker's vcpu loop).
 *
 *   Paused ──run()──► Running ──exit handled──► Running
 *                        │  pause() requested ──► Paused (run() resumes)
 *                        └─ stop / limit ───────► Finished (final)
 *
 * Native run() is called in chunks of at most `chunkInstructions` budget units, so the
 * instruction limit is exact and the wall-clock timeout is checked at least once per chunk.
 * The limit counts the native budget's units (native/cpu.cc Cpu::run): instructions retired,
 * exceptions delivered, and a REP string instruction one per iteration, so no single
 * instruction can run past it; `executed` still counts retired instructions only. Every exit goes
 * through handleExit (src/kvm/exits.ts); this file only sequences.
 */
import { ExitReason } from '../native/types.ts';
import { handleExit, RESUME, type ExitAction, type ExitContext, type StopInfo } from './exits.ts';
import type { Vcpu } from './vcpu.ts';
import { OutOfMemoryError } from '../util/errors.ts';

export type RunState = 'Paused' | 'Running' | 'Finished';

export interface RunLimits {
  /** Total budget units across all run() calls (see above); 0 = none. */
  maxInstructions: number;
  /** Total wall-clock ms across all run() calls; 0 = none. */
  timeoutMs: number;
  chunkInstructions: number;
}

export class RunLoop {
  state: RunState = 'Paused';
  /** Set once Finished. */
  stop: StopInfo | null = null;
  /** Instructions retired under this loop. */
  executed = 0;
  /** Budget units used under this loop (what maxInstructions limits). */
  used = 0;
  wallMs = 0;
  private pauseRequested = false;
  private runStart = 0;

  constructor(
    private readonly vcpu: Vcpu,
    private readonly ctx: ExitContext,
    private readonly limits: RunLimits,
    /** Called after every native run() with its exit reason (the Vm flushes the console on BUDGET). */
    private readonly afterRun: (reason: number) => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The wall-clock limit has passed (checked by long host-side work during a run, too). */
  pastDeadline(): boolean {
    const { timeoutMs } = this.limits;
    return timeoutMs > 0 && this.state === 'Running' && this.wallMs + (this.now() - this.runStart) >= timeoutMs;
  }

  /** Ask a Running loop to pause after the exit being handled (e.g. from a console callback). */
  pause(): void {
    if (this.state === 'Running') this.pauseRequested = true;
  }

  /** Runs until Finished or Paused; returns the new state. */
  run(): RunState {
    if (this.state === 'Finished') return this.state;
    this.state = 'Running';
    this.pauseRequested = false;
    const t0 = (this.runStart = this.now());
    const { maxInstructions, timeoutMs, chunkInstructions } = this.limits;
    try {
      for (;;) {
        let budget = chunkInstructions;
        if (maxInstructions > 0) {
          const left = maxInstructions - this.used;
          if (left <= 0) return this.finish({ reason: 'max-instructions', exitStatus: null });
          budget = Math.min(budget, left);
        }
        if (timeoutMs > 0 && this.wallMs + (this.now() - t0) >= timeoutMs) {
          return this.finish({ reason: 'timeout', exitStatus: null });
        }
        const before = this.vcpu.instructions();
        const reason = this.vcpu.native.run(budget);
        this.executed += this.vcpu.instructions() - before;
        this.used += this.vcpu.budgetUsed();
        const action: ExitAction = reason === ExitReason.BUDGET ? RESUME : handleExit(this.ctx, this.vcpu.readExit());
        try {
          this.afterRun(reason);
        } catch (e) {
          // The host's timed work (kswapd, khugepaged) ran out of frames: a stop, not a throw.
          if (!(e instanceof OutOfMemoryError)) throw e;
          return this.finish({ reason: 'host-oom', exitStatus: null, error: { code: e.code, message: `host work between guest instructions: ${e.message}` } });
        }
        if (action.kind === 'stop') return this.finish(action.stop);
        if (this.pauseRequested) {
          this.pauseRequested = false;
          this.state = 'Paused';
          return this.state;
        }
      }
    } finally {
      this.wallMs += this.now() - t0;
    }
  }

  private finish(stop: StopInfo): RunState {
    this.stop = stop;
    this.state = 'Finished';
    return this.state;
  }
}
