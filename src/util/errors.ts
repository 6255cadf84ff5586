/**
 * The project's typed errors. Every user-facing failure is one of these, with a `code`
 * and a message that names the problem; the CLI prints `error: <message>` (stack only
 * with --debug). Anything else reaching the top is a bug.
 */
export type ErrorCode =
  | 'EINVAL_CONFIG' // a config field or flag has a bad value
  | 'EINVAL_ELF' // malformed guest image
  | 'EGUEST' // the guest did something the VMM refuses (strict mode, bad exit...)
  | 'ENOMEM' // simulated host out of memory / swap
  | 'EFAULT' // VMM memory behind a memslot cannot be faulted in
  | 'EINTERNAL' // a hugevisor bug (an emulator or hypervisor invariant broke)
  | 'ENATIVE' // native addon missing or failed
  | 'EIO'; // files (swap file, guest file) unreadable

export class HugevisorError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A config value (CLI flag, API option, sysfs knob) is invalid. */
export class ConfigError extends HugevisorError {
  /** The config path of the bad value ('host.thp.enabled'), when a schema named one. */
  readonly path: string | undefined;
  /** The message without its path ('expected always|madvise|never, got "sometimes"'). */
  readonly detail: string;
  constructor(message: string, where?: { path: string; detail: string }) {
    super('EINVAL_CONFIG', message);
    this.path = where?.path;
    this.detail = where?.detail ?? message;
  }
}

/** The guest ELF image is malformed. */
export class ElfError extends HugevisorError {
  constructor(message: string) {
    super('EINVAL_ELF', message);
  }
}

/** The guest did something the VMM refuses to continue from. */
export class GuestError extends HugevisorError {
  constructor(message: string) {
    super('EGUEST', message);
  }
}

/** The simulated host ran out of memory or swap. */
export class OutOfMemoryError extends HugevisorError {
  constructor(message: string) {
    super('ENOMEM', message);
  }
}

export class NativeError extends HugevisorError {
  constructor(message: string) {
    super('ENATIVE', message);
  }
}

/** A file (a guest image, a config file) cannot be read or is not what it must be. */
export class FileError extends HugevisorError {
  constructor(message: string) {
    super('EIO', message);
  }
}
