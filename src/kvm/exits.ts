/**
 * VM exit handling (KVM's kvm_handle_exit / Firecracker's handle_kvm_exit): one function
 * per exit reason, each taking the decoded ExitInfo and an ExitContext and returning what
 * the run loop does next. None touches the native vCPU except through the context, so every
 * handler is unit-tested with a synthetic exit (test/vm-exits.test.ts).
 */
import { Access, ExitReason, type AccessKind } from '../native/types.ts';
import type { ErrorCode } from '../util/errors.ts';
import type { PioBus } from './devices.ts';
import type { ExitInfo } from './vcpu.ts';
import type { EptFaultResult } from './mmu/tdp-fault.ts';

/** Why a VM stopped (stable strings: the CLI's --json and docs/cli.md use them). */
export type StopReason =
  | 'exit' // the guest wrote its status to the debug-exit port
  | 'hlt' // hlt with nothing to wake it: status 0
  | 'triple-fault'
  | 'unhandled-io' // strict mode: an access to a port no device decodes
  | 'mmio' // an access to guest-physical memory outside every memslot
  | 'ept-violation' // an EPT violation the memory backend could not resolve
  | 'ept-misconfig' // a malformed EPT entry (KVM's EPT_MISCONFIG): a hypervisor bug
  | 'host-oom' // the simulated host had no frame left for guest memory or an EPT table
  | 'efault' // the VMM memory behind a memslot cannot be faulted in (KVM_RUN's -EFAULT)
  | 'internal-error' // the emulator reported a bug
  | 'max-instructions' // a limit on budget units (resumable: run() continues)
  | 'timeout' // the wall-clock limit (resumable)
  | 'simulated-time' // run({ untilSimulatedNs }) reached (resumable)
  | 'aborted' // run({ signal }) was aborted (resumable)
  | 'paused'; // pause() was called, or the VM has not run (resumable)

export interface StopInfo {
  reason: StopReason;
  /** The guest's exit status; null when the guest did not choose one. */
  exitStatus: number | null;
  /** Set for abnormal stops: a GuestError-like report (never thrown). */
  error?: { code: ErrorCode; message: string };
}

export type ExitAction = { kind: 'resume' } | { kind: 'stop'; stop: StopInfo };
export const RESUME: ExitAction = { kind: 'resume' };

/** Resolves EPT violations (EPT mode); absent in no-EPT mode. */
export interface EptViolationHandler {
  /** What tdp_page_fault did: fixed or retry resume the guest; the other outcomes are handled here. */
  handleEptViolation(exit: ExitInfo): EptFaultResult;
}

/** VMM-side statistics; every handled exit bumps one (Firecracker's metrics). */
export interface VmmStats {
  io_out: number;
  io_in: number;
  io_unhandled: number;
  roi_begin: number;
  roi_end: number;
  /**
   * MMIO page reports: exits the vCPU then completes itself for that page. Each page reports
   * once while the vCPU keeps it registered (at most 65,536 pages, the oldest forgotten
   * first); a forgotten page reports again when touched again.
   */
  mmio_pages: number;
  /** VMM diagnostic lines not passed on beyond MAX_LOG_LINES (src/kvm/vm.ts). */
  log_suppressed: number;
}

/**
 * How many unhandled ports, and unhandled MMIO pages, get a log line each (and, for MMIO
 * pages, a place in the result's list). Beyond it a guest touching many pages costs the VMM
 * a counter, not a line and a list entry per page: one summary line at the end says how
 * many were not logged (unhandledSummary).
 */
export const UNHANDLED_LOGGED = 64;

export interface ExitContext {
  bus: PioBus;
  strict: boolean;
  log(message: string): void;
  /** Completes an IN at the next run(). */
  setInValue(value: number): void;
  /** Ports reported as unhandled (at most 65536); the first UNHANDLED_LOGGED are logged. */
  readonly unhandledPorts: Set<number>;
  /**
   * Default mode: make the vCPU complete data accesses to this GPA's page outside guest
   * memory the ABI way (reads all-ones, writes dropped; NativeVcpu.completeMmio). Absent:
   * MMIO always stops (a context without a vCPU, as in unit tests of strict handling).
   */
  completeMmio?(gpa: number): void;
  /**
   * Page-aligned GPAs of the first UNHANDLED_LOGGED MMIO pages reported (each logged once);
   * stats.mmio_pages counts every page reported.
   */
  readonly unhandledMmio: Set<number>;
  /** A device asked to stop during this exit. */
  pendingStop: StopInfo | null;
  ept?: EptViolationHandler;
  stats: VmmStats;
}

export const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

const VECTOR_NAMES: Record<number, string> = { 0: '#DE', 6: '#UD', 8: '#DF', 11: '#NP', 12: '#SS', 13: '#GP', 14: '#PF' };
const vectorName = (v: number): string => `${VECTOR_NAMES[v] ?? '#' + v}(${v})`;

const ACCESS_TEXT: Record<AccessKind, string> = { [Access.READ]: 'read', [Access.WRITE]: 'write', [Access.FETCH]: 'fetch' };

const sizeMask = (size: number): number => (size >= 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff);

/** Port I/O: dispatch to the device, or report an unhandled port. */
export function handleIoExit(ctx: ExitContext, exit: ExitInfo): ExitAction {
  const { ioPort: port, ioSize: size } = exit;
  const isIn = exit.ioDirection === 1;
  const dev = ctx.bus.find(port);
  if (isIn) {
    ctx.stats.io_in++;
    const v = dev?.read(port, size);
    if (v !== undefined) {
      ctx.setInValue(v & sizeMask(size));
      return RESUME;
    }
  } else {
    ctx.stats.io_out++;
    if (dev?.write(port, size, exit.value & sizeMask(size))) {
      return ctx.pendingStop ? { kind: 'stop', stop: ctx.pendingStop } : RESUME;
    }
  }
  // Nothing decodes this access.
  ctx.stats.io_unhandled++;
  const what = `${isIn ? 'in' : 'out'} ${size === 4 ? 'dword' : size === 2 ? 'word' : 'byte'} port ${hex(port)}`;
  if (ctx.strict) {
    return stopWithError('unhandled-io', `unhandled I/O: ${what}${isIn ? '' : ` value ${hex(exit.value & sizeMask(size))}`} at RIP ${hex(exit.rip)} (strict mode)`);
  }
  if (!ctx.unhandledPorts.has(port)) {
    ctx.unhandledPorts.add(port);
    if (ctx.unhandledPorts.size <= UNHANDLED_LOGGED) ctx.log(`unhandled I/O: ${what} at RIP ${hex(exit.rip)} (reads return all ones; reported once per port)`);
  }
  if (isIn) ctx.setInValue(sizeMask(size)); // like QEMU: an undecoded read floats high
  return RESUME;
}

/** HLT with no interrupt source: the guest is done (status 0). */
export function handleHltExit(_ctx: ExitContext, _exit: ExitInfo): ExitAction {
  return { kind: 'stop', stop: { reason: 'hlt', exitStatus: 0 } };
}

/**
 * MMIO: a guest-physical access outside every memslot (docs/guest-abi.md "Devices and exits").
 * There is no MMIO device model. Strict mode stops, naming the GPA and RIP. Default mode
 * reports the 4 KiB page and has the vCPU complete the access (reads all-ones like QEMU's
 * unassigned memory, writes dropped) when it re-executes the instruction, which has not
 * retired. From then on the vCPU completes accesses to that page without an exit, so each
 * page is reported once and counted exactly (stats.mmio_pages) without the VMM remembering
 * it (the vCPU's registration, bounded at 65,536 pages, is the per-page state): only the
 * first UNHANDLED_LOGGED pages are logged and listed. An instruction fetch, or a guest page-table access, from MMIO space
 * cannot be completed that way: it stops in both modes.
 */
export function handleMmioExit(ctx: ExitContext, exit: ExitInfo): ExitAction {
  const kind = ACCESS_TEXT[exit.access] ?? `access ${exit.access}`;
  const via = exit.gvaValid ? ` (GVA ${hex(exit.gva)})` : ' (a guest page-table access)';
  const what = `MMIO ${kind} at GPA ${hex(exit.gpa)}${via} outside guest memory, at RIP ${hex(exit.rip)}`;
  if (exit.access === Access.FETCH || !exit.gvaValid) return stopWithError('mmio', `${what}: cannot be completed (no MMIO device model)`);
  if (ctx.strict || !ctx.completeMmio) return stopWithError('mmio', `${what}${ctx.strict ? ' (strict mode)' : ''}`);
  const page = exit.gpa - (exit.gpa % 4096);
  ctx.stats.mmio_pages++;
  if (!ctx.unhandledMmio.has(page)) {
    if (ctx.unhandledMmio.size < UNHANDLED_LOGGED) {
      ctx.unhandledMmio.add(page);
      ctx.log(`unhandled MMIO access at GPA ${hex(exit.gpa)} (RIP ${hex(exit.rip)}): ${kind}; reads return all ones, writes are dropped (reported once per page)`);
    }
  }
  ctx.completeMmio(exit.gpa);
  return RESUME;
}

/** The lines that close a run's unhandled reports: how many ports and MMIO pages went unlogged. */
export function unhandledSummary(ctx: ExitContext): string[] {
  const lines: string[] = [];
  const ports = ctx.unhandledPorts.size;
  if (ports > UNHANDLED_LOGGED) lines.push(`unhandled I/O: ${ports - UNHANDLED_LOGGED} more ports not logged (${ports} in all, listed in the result)`);
  const pages = ctx.stats.mmio_pages;
  if (pages > ctx.unhandledMmio.size) lines.push(`unhandled MMIO: ${pages - ctx.unhandledMmio.size} more MMIO pages not listed (${pages} in all)`);
  return lines;
}

/**
 * EPT violation: the memory backend maps the page (EPT mode); without one it is a VMM bug.
 * A host that cannot back the page ends the run with a stop reason, never an exception: the
 * result keeps every counter up to the faulting instruction, which has not retired.
 */
export function handleEptViolationExit(ctx: ExitContext, exit: ExitInfo): ExitAction {
  if (!ctx.ept) {
    return stopWithError('ept-violation', `EPT violation at GPA ${hex(exit.gpa)} with EPT off (RIP ${hex(exit.rip)}): no handler`, 'EINTERNAL');
  }
  const r = ctx.ept.handleEptViolation(exit);
  switch (r.kind) {
    case 'fixed':
    case 'retry':
      return RESUME;
    case 'mmio':
      return handleMmioExit(ctx, exit);
    case 'host-oom':
      return stopWithError('host-oom', `${r.message} at RIP ${hex(exit.rip)}`, 'ENOMEM');
    case 'efault':
      return stopWithError('efault', `${r.message} at RIP ${hex(exit.rip)}`, 'EFAULT');
  }
}

/**
 * EPT misconfiguration: the EPT this VMM built holds a malformed entry at the GPA (W without
 * R, a reserved memory type, ...). Resuming would fault again: stop, naming it.
 */
export function handleEptMisconfigExit(_ctx: ExitContext, exit: ExitInfo): ExitAction {
  const kind = ACCESS_TEXT[exit.access] ?? `access ${exit.access}`;
  const via = exit.gvaValid ? `GVA ${hex(exit.gva)}` : 'a guest page-table access';
  return stopWithError(
    'ept-misconfig',
    `EPT misconfiguration at GPA ${hex(exit.gpa)} (${kind} via ${via}, EPT level ${exit.level}) at RIP ${hex(exit.rip)}: a malformed EPT entry, a hypervisor bug`,
    'EINTERNAL',
  );
}

/** Triple fault: a report naming the vector chain, RIP, CR2, error code and instruction bytes. */
export function handleShutdownExit(_ctx: ExitContext, exit: ExitInfo): ExitAction {
  return stopWithError('triple-fault', tripleFaultReport(exit));
}

export function tripleFaultReport(exit: ExitInfo): string {
  // Every exception of the chain with its error code (SDM 6.15 classes).
  const named = exit.chain.map((e) => (e.errorCode === null ? vectorName(e.vector) : `${vectorName(e.vector)} error ${hex(e.errorCode)}`));
  const chain = [...named, 'triple fault'].join(' -> ');
  const bytes = exit.insnBytes.length ? exit.insnBytes.map((b) => b.toString(16).padStart(2, '0')).join(' ') : '(unreadable)';
  return `triple fault: ${chain} at RIP ${hex(exit.rip)}, CR2 ${hex(exit.cr2)}, error code ${hex(exit.errorCode)}, instruction bytes ${bytes}`;
}

export function handleInternalExit(_ctx: ExitContext, exit: ExitInfo): ExitAction {
  return stopWithError('internal-error', `internal emulator error at RIP ${hex(exit.rip)} (a hugevisor bug; please report it)`, 'EINTERNAL');
}

/** An abnormal stop; the code says whose doing it was (the guest's by default). */
function stopWithError(reason: StopReason, message: string, code: ErrorCode = 'EGUEST'): ExitAction {
  return { kind: 'stop', stop: { reason, exitStatus: null, error: { code, message } } };
}

/** The one dispatch point: exit reason → handler. BUDGET (a run() chunk ended) resumes. */
export function handleExit(ctx: ExitContext, exit: ExitInfo): ExitAction {
  switch (exit.reason) {
    case ExitReason.IO:
      return handleIoExit(ctx, exit);
    case ExitReason.HLT:
      return handleHltExit(ctx, exit);
    case ExitReason.MMIO:
      return handleMmioExit(ctx, exit);
    case ExitReason.EPT_VIOLATION:
      return handleEptViolationExit(ctx, exit);
    case ExitReason.SHUTDOWN:
      return handleShutdownExit(ctx, exit);
    case ExitReason.EPT_MISCONFIG:
      return handleEptMisconfigExit(ctx, exit);
    case ExitReason.BUDGET:
    case ExitReason.NONE:
      return RESUME;
    case ExitReason.INTERNAL:
      return handleInternalExit(ctx, exit);
    default:
      return stopWithError('internal-error', `unknown exit reason ${String(exit.reason)} at RIP ${hex(exit.rip)}`, 'EINTERNAL');
  }
}
