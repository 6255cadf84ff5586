/**
 * The vCPU run loop: a small explicit state machine (Firecracker's vcpu loop).
 *
 *   Paused ──run()──► Running ──exit handled──► Running
 *                        │  a limit, pause() or an abort ──► Paused (run() continues)
 *                        └─ the guest stops ──────────────► Finished (final)
 *
 * Native run() is called with a budget in units (native/cpu.cc Cpu::run): instructions
 * retired, exceptions delivered, and a REP string instruction one per iteration, so no single
 * instruction can run past a limit; `executed` still counts retired instructions only.
 *
 * Natural boundaries — a VM exit, or the end of a chunk of `chunkInstructions` units since
 * the last natural boundary — are where the VMM does its timed work (afterRun: the console
 * flush, the host clock and with it khugepaged and kswapd). Limits, samples and pauses may
 * cut a chunk anywhere, but such an artificial boundary does no VMM work and the next call
 * finishes the cut chunk: a run split into any number of pieces meets the same natural
 * boundaries as one uninterrupted run, so it ends with the same counters, host state and
 * console bytes. Every exit goes through handleExit (src/kvm/exits.ts); this file only
 * sequences.
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

/** Limits of one run() call, on top of the VM's totals. */
export interface PieceLimits {
  /** Stop once the loop has used this many budget units in all (absent: no such limit). */
  untilUnits?: number;
  /** Stop at the first boundary at or after this simulated time (ns since the guest started). */
  untilSimulatedNs?: number;
  /** Stop at the next boundary once aborted. */
  signal?: AbortSignal;
  /** Stop for a sample once the loop has used this many units in all (the caller samples and calls run() on). */
  sampleAtUnits?: number;
  /** Stop for a sample at the first boundary at or after this simulated time. */
  sampleAtNs?: number;
}

export class RunLoop {
  state: RunState = 'Paused';
  /** Why the loop last stopped (final once Finished). */
  stop: StopInfo | null = null;
  /** Instructions retired under this loop. */
  executed = 0;
  /** Budget units used under this loop (what maxInstructions limits). */
  used = 0;
  wallMs = 0;
  private pauseRequested = false;
  private runStart = 0;
  /** The last run() stopped at a sample point (the caller samples, clears it and goes on). */
  sampleDue = false;
  /** Native returns at artificial boundaries (a limit or a sample point cut a chunk). */
  cutReturns = 0;
  /** Units left until the next natural chunk boundary (a cut chunk is finished first). */
  private chunkLeft: number;

  constructor(
    private readonly vcpu: Vcpu,
    private readonly ctx: ExitContext,
    private readonly limits: RunLimits,
    /** The VMM's work at a natural boundary, with the exit reason (BUDGET at a chunk's end). */
    private readonly afterRun: (reason: number) => void = () => {},
    private readonly now: () => number = () => performance.now(),
    /** Simulated ns so far (for the simulated-time limits). */
    private readonly simulatedNs: () => number = () => 0,
  ) {
    this.chunkLeft = limits.chunkInstructions;
  }

  /** The wall-clock limit has passed (checked by long host-side work during a run, too). */
  pastDeadline(): boolean {
    const { timeoutMs } = this.limits;
    return timeoutMs > 0 && this.state === 'Running' && this.wallMs + (this.now() - this.runStart) >= timeoutMs;
  }

  /** Ask a Running loop to pause after the exit being handled (e.g. from a console callback). */
  pause(): void {
    if (this.state === 'Running') this.pauseRequested = true;
  }

  /**
   * Runs until the guest stops (Finished) or something stops this call (Paused: a limit, a
   * sample point, pause(), an abort); returns the new state. `stop` says why.
   */
  run(piece: PieceLimits = {}): RunState {
    if (this.state === 'Finished') return this.state;
    this.state = 'Running';
    this.pauseRequested = false;
    this.sampleDue = false;
    const t0 = (this.runStart = this.now());
    const { maxInstructions, timeoutMs } = this.limits;
    const pieceEnd = piece.untilUnits ?? Infinity;
    const sampleEnd = piece.sampleAtUnits ?? Infinity;
    const timed = piece.untilSimulatedNs !== undefined || piece.sampleAtNs !== undefined;
    try {
      for (;;) {
        if (maxInstructions > 0 && this.used >= maxInstructions) return this.suspend('max-instructions');
        if (this.used >= pieceEnd) return this.suspend('max-instructions');
        if (this.used >= sampleEnd) return this.suspend('sample');
        if (piece.signal?.aborted) return this.suspend('aborted');
        if (timeoutMs > 0 && this.wallMs + (this.now() - t0) >= timeoutMs) return this.suspend('timeout');
        if (timed) {
          const ns = this.simulatedNs();
          if (piece.untilSimulatedNs !== undefined && ns >= piece.untilSimulatedNs) return this.suspend('simulated-time');
          if (piece.sampleAtNs !== undefined && ns >= piece.sampleAtNs) return this.suspend('sample');
        }
        let budget = Math.min(this.chunkLeft, pieceEnd - this.used, sampleEnd - this.used);
        if (maxInstructions > 0) budget = Math.min(budget, maxInstructions - this.used);
        const before = this.vcpu.instructions();
        const reason = this.vcpu.native.run(budget);
        this.executed += this.vcpu.instructions() - before;
        const units = this.vcpu.budgetUsed();
        this.used += units;
        this.chunkLeft -= units;
        if (reason === ExitReason.BUDGET && this.chunkLeft > 0) {
          this.cutReturns++; // an artificial boundary: no VMM work
          continue;
        }
        this.chunkLeft = this.limits.chunkInstructions;
        const action: ExitAction = reason === ExitReason.BUDGET ? RESUME : handleExit(this.ctx, this.vcpu.readExit());
        try {
          this.afterRun(reason);
        } catch (e) {
          // The host's timed work (kswapd, khugepaged) ran out of frames: a stop, not a throw.
          if (!(e instanceof OutOfMemoryError)) throw e;
          return this.finish({ reason: 'host-oom', exitStatus: null, error: { code: e.code, message: `host work between guest instructions: ${e.message}` } });
        }
        if (action.kind === 'stop') return this.finish(action.stop);
        if (this.pauseRequested) return this.suspend('paused');
      }
    } finally {
      this.wallMs += this.now() - t0;
    }
  }

  /**
   * Stopped by a limit, a request or a sample point: Paused, and run() continues exactly
   * here. A sample point sets sampleDue and leaves `stop` as it was (it is not a stop).
   */
  private suspend(reason: 'max-instructions' | 'timeout' | 'simulated-time' | 'aborted' | 'paused' | 'sample'): RunState {
    this.pauseRequested = false;
    if (reason === 'sample') this.sampleDue = true;
    else this.stop = { reason, exitStatus: null };
    this.state = 'Paused';
    return this.state;
  }

  private finish(stop: StopInfo): RunState {
    this.stop = stop;
    this.state = 'Finished';
    return this.state;
  }
}
