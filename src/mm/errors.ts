/**
 * Errors of the host process model. A bad address or an access the VMA forbids is what
 * would be SIGSEGV (or EFAULT from a syscall) in a real process: a SegvError, carrying the
 * address. Bad syscall arguments are ConfigErrors (EINVAL) from src/util/errors.ts.
 */
import { HugevisorError } from '../util/errors.ts';

export class SegvError extends HugevisorError {
  readonly addr: number;
  constructor(addr: number, why: string) {
    super('EGUEST', `SIGSEGV at host address 0x${addr.toString(16)}: ${why}`);
    this.addr = addr;
  }
}
