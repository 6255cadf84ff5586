/**
 * The VMM's port-I/O devices (docs/guest-abi.md "Devices and exits"), all QEMU-compatible:
 * COM1 (8250 UART, transmit only), the isa-debug-exit port, and the region-of-interest
 * marker port. Devices never stop the VM themselves: they ask through VmControl and the
 * exit handler decides, so each device is testable with a recording control.
 */
import type { StopInfo } from './exits.ts';

/** What a device may ask of the VM it is attached to. */
export interface VmControl {
  /** Stop the VM once the current exit has been handled. */
  requestStop(stop: StopInfo): void;
  roiBegin(): void;
  roiEnd(): void;
  /** One line of VMM diagnostics (unhandled ports, odd device use). */
  log(message: string): void;
}

export interface PioDevice {
  readonly name: string;
  /** Inclusive port range. */
  readonly first: number;
  readonly last: number;
  /** IN: the value read; undefined = the device does not decode reads at this port. */
  read(port: number, size: number): number | undefined;
  /** OUT; returns false when the device does not decode writes at this port. */
  write(port: number, size: number, value: number): boolean;
}

/** The I/O port bus: at most one device per port. */
export class PioBus {
  private readonly devices: PioDevice[] = [];

  register(dev: PioDevice): void {
    const clash = this.devices.find((d) => dev.first <= d.last && d.first <= dev.last);
    if (clash) throw new Error(`I/O ports 0x${dev.first.toString(16)}-0x${dev.last.toString(16)} of ${dev.name} overlap ${clash.name}`);
    this.devices.push(dev);
  }

  find(port: number): PioDevice | undefined {
    for (const d of this.devices) if (port >= d.first && port <= d.last) return d;
    return undefined;
  }
}

/** Where console output goes as it arrives (both optional). */
export interface ConsoleSinks {
  /** The exact bytes, in order: a copy the callee may keep. */
  onBytes?: (bytes: Uint8Array) => void;
  /** The bytes decoded as UTF-8 (streaming: a character split across flushes stays whole; lossy for invalid bytes). */
  onText?: (text: string) => void;
}

/**
 * Console output: a serial port carries bytes, so the console keeps bytes. Each byte goes
 * into a preallocated buffer (no allocation per byte) that is flushed to the sinks at each
 * newline, when it fills, and whenever the VMM flushes (each run chunk and at stop). The
 * first MAX_COLLECTED bytes are also kept for the run result; later ones are still streamed
 * and counted (`truncatedBytes`), never silently lost.
 */
export class Console {
  /** Bytes kept for the result at most (16 MiB); the rest is streamed and counted. */
  static readonly MAX_COLLECTED = 16 * 1024 * 1024;
  /** Pending bytes flushed together: the granularity of streaming between newlines. */
  static readonly FLUSH_BYTES = 4096;
  private readonly pending = new Uint8Array(Console.FLUSH_BYTES);
  private pendingLength = 0;
  /** Kept bytes: grown by doubling up to MAX_COLLECTED. */
  private kept = new Uint8Array(Console.FLUSH_BYTES);
  private keptLength = 0;
  private total = 0;
  private readonly decoder = new TextDecoder('utf-8');
  private ended = false;
  private decoded: { length: number; text: string } = { length: 0, text: '' };

  constructor(private readonly sinks: ConsoleSinks = {}) {}

  putByte(b: number): void {
    this.pending[this.pendingLength++] = b;
    this.total++;
    if (b === 0x0a || this.pendingLength === Console.FLUSH_BYTES) this.flush();
  }

  flush(): void {
    const n = this.pendingLength;
    if (n === 0) return;
    this.pendingLength = 0;
    const chunk = this.pending.subarray(0, n);
    this.keep(chunk);
    this.sinks.onBytes?.(chunk.slice());
    if (this.sinks.onText) {
      const text = this.decoder.decode(chunk, { stream: true });
      if (text) this.sinks.onText(text);
    }
  }

  /**
   * The output is complete (the VM finished): flush, and end the text stream, so a
   * trailing partial UTF-8 sequence reaches onText as U+FFFD instead of vanishing. The
   * bytes of that sequence went to onBytes as they are.
   */
  end(): void {
    this.flush();
    if (this.ended) return;
    this.ended = true;
    if (this.sinks.onText) {
      const text = this.decoder.decode();
      if (text) this.sinks.onText(text);
    }
  }

  private keep(chunk: Uint8Array): void {
    const room = Console.MAX_COLLECTED - this.keptLength;
    const n = Math.min(room, chunk.length);
    if (n === 0) return;
    if (this.keptLength + n > this.kept.length) {
      let size = this.kept.length;
      while (size < this.keptLength + n) size *= 2;
      const grown = new Uint8Array(Math.min(size, Console.MAX_COLLECTED));
      grown.set(this.kept.subarray(0, this.keptLength));
      this.kept = grown;
    }
    this.kept.set(n === chunk.length ? chunk : chunk.subarray(0, n), this.keptLength);
    this.keptLength += n;
  }

  /** The kept bytes (the first MAX_COLLECTED printed), exactly as written: a copy. */
  get bytes(): Uint8Array {
    return this.kept.slice(0, this.keptLength);
  }

  /** The kept bytes decoded as UTF-8 (each invalid byte, and a partial sequence at the end, as U+FFFD). */
  get text(): string {
    if (this.decoded.length !== this.keptLength) {
      this.decoded = { length: this.keptLength, text: new TextDecoder('utf-8').decode(this.kept.subarray(0, this.keptLength)) };
    }
    return this.decoded.text;
  }

  /** Every byte printed (streamed), kept or not. */
  get byteCount(): number {
    return this.total;
  }

  /** Bytes printed but not kept for the result (beyond MAX_COLLECTED); 0 normally. */
  get truncatedBytes(): number {
    return this.total - this.pendingLength - this.keptLength;
  }
}

export const COM1_BASE = 0x3f8;
const UART_THR = 0; // transmit holding register (DLAB = 0)
const UART_IIR = 2;
const UART_LCR = 3;
const UART_LSR = 5;
const LCR_DLAB = 0x80;
/** Line status: transmitter holding register empty | transmitter empty. */
export const LSR_THRE_TEMT = 0x60;

/**
 * COM1, transmit side of an 8250. Setup writes (0x3F9–0x3FF) are accepted and ignored
 * except LCR's DLAB bit, which QEMU honours: while it is set, 0x3F8 is the divisor latch,
 * so a guest programming the baud rate does not print a stray byte.
 */
export class Serial8250 implements PioDevice {
  readonly name = 'COM1';
  readonly first = COM1_BASE;
  readonly last = COM1_BASE + 7;
  private lcr = 0x03;

  constructor(private readonly console: Console) {}

  read(port: number): number | undefined {
    switch (port - COM1_BASE) {
      case UART_LSR:
        return LSR_THRE_TEMT;
      case UART_IIR:
        return 0x01; // no interrupt pending
      case UART_LCR:
        return this.lcr;
      default:
        return 0x00; // no receive data, no modem lines
    }
  }

  write(port: number, _size: number, value: number): boolean {
    const reg = port - COM1_BASE;
    if (reg === UART_LCR) this.lcr = value & 0xff;
    else if (reg === UART_THR && (this.lcr & LCR_DLAB) === 0) this.console.putByte(value & 0xff);
    return true;
  }
}

export const DEBUG_EXIT_PORT = 0xf4;

/** isa-debug-exit: an OUT of a byte or dword stops the VM; exit status = the value written. */
export class DebugExit implements PioDevice {
  readonly name = 'debug-exit';
  readonly first = DEBUG_EXIT_PORT;
  readonly last = DEBUG_EXIT_PORT;

  constructor(private readonly ctl: VmControl) {}

  read(): number | undefined {
    return undefined;
  }

  write(_port: number, size: number, value: number): boolean {
    const status = size >= 4 ? value >>> 0 : value & (size === 2 ? 0xffff : 0xff);
    this.ctl.requestStop({ reason: 'exit', exitStatus: status });
    return true;
  }
}

export const ROI_PORT = 0xf6;
export const ROI_BEGIN = 1;
export const ROI_END = 2;

/** Region-of-interest markers: 1 = begin (snapshot counters), 2 = end (record the delta). */
export class RoiPort implements PioDevice {
  readonly name = 'roi';
  readonly first = ROI_PORT;
  readonly last = ROI_PORT;
  private warned = false;

  constructor(private readonly ctl: VmControl) {}

  read(): number | undefined {
    return undefined;
  }

  write(_port: number, _size: number, value: number): boolean {
    if (value === ROI_BEGIN) this.ctl.roiBegin();
    else if (value === ROI_END) this.ctl.roiEnd();
    else if (!this.warned) {
      this.warned = true;
      this.ctl.log(`ROI port 0xf6: ignoring value ${value} (1 = begin, 2 = end)`);
    }
    return true;
  }
}
