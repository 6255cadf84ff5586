// Types for run-guest.mjs (the QEMU reference runner), so TS tests import it checked.
export declare const QEMU_BINARY: string;
export declare const TRAMPOLINE: string;
export declare const TRAMPOLINE_ERROR_STATUS: number;
export interface QemuRunOptions {
  /** guest memory in bytes (multiple of 4096, 2 MiB..3 GiB); default 64 MiB */
  memory?: number;
  pageSize?: '4k' | '2m' | '1g';
  args?: Array<number | bigint | string>;
  cmdline?: string;
  timeoutSeconds?: number;
}
export interface QemuRunResult {
  console: string;
  /** value written to port 0xF4 (0..127), or null when QEMU stopped otherwise */
  status: number | null;
  reason: string;
  stderr: string;
  argv: string[];
}
export declare function qemuAvailable(): boolean;
export declare function guestPath(guest: string): string;
export declare function runGuestQemu(guest: string, opts?: QemuRunOptions): Promise<QemuRunResult>;
