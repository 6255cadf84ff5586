/**
 * The live status line of a long `hugevisor stat` in a terminal: instructions, simulated
 * time, guest MIPS and guest #PF so far, redrawn in place on stderr at most a few times per
 * wall-clock second and erased before anything else is printed and at the end. Off when
 * stderr is not a terminal or with --quiet; the clock is injected so tests drive it.
 */
import { duration, grouped } from './format.ts';

/** Erase the current terminal line and return to its start. */
export const ERASE_LINE = '\r\x1b[K';

/** Redraws at most this often (wall-clock ms): a few times per second. */
export const STATUS_REDRAW_MS = 250;

export interface StatusProgress {
  instructions: number;
  simulatedNs: number;
  guestPf: number;
}

export class StatusLine {
  private shown = false;
  private lastDraw = -Infinity;
  private readonly start: number;

  /**
   * `write` goes to stderr; `now` is the wall clock in ms; `enabled` false makes every
   * method a no-op (not a terminal, or --quiet).
   */
  constructor(
    private readonly write: (s: string) => void,
    private readonly now: () => number,
    readonly enabled: boolean,
  ) {
    this.start = enabled ? now() : 0;
  }

  /** Draw the progress if the last draw is at least STATUS_REDRAW_MS old. */
  update(p: StatusProgress): void {
    if (!this.enabled) return;
    const t = this.now();
    if (t - this.lastDraw < STATUS_REDRAW_MS) return;
    this.lastDraw = t;
    this.write(ERASE_LINE + StatusLine.text(p, (t - this.start) / 1000));
    this.shown = true;
  }

  /** Erase the line (before other output, and at the end); an update after the redraw interval draws it again. */
  clear(): void {
    if (!this.shown) return;
    this.write(ERASE_LINE);
    this.shown = false;
  }

  /** The line's text: `stat: 12,345,678 instr  4.12 ms simulated  13.20 MIPS  16,384 guest #PF`. */
  static text(p: StatusProgress, wallSeconds: number): string {
    const mips = wallSeconds > 0 ? p.instructions / wallSeconds / 1e6 : 0;
    return `stat: ${grouped(p.instructions)} instr  ${duration(p.simulatedNs / 1e9)} simulated  ${mips.toFixed(2)} MIPS  ${grouped(p.guestPf)} guest #PF`;
  }
}
