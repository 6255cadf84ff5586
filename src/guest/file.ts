/**
 * Guest images from files and the sample guests `npm install` builds: a file is checked
 * before it is read whole (a regular file, at most MAX_GUEST_IMAGE bytes, the ELF magic
 * first), so a wrong path costs one line, not gigabytes.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ElfError, FileError, HugevisorError } from '../util/errors.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where `npm install` puts the sample guests; HUGEVISOR_GUESTS overrides (tests). */
export function samplesDir(): string {
  return process.env.HUGEVISOR_GUESTS ?? join(root, 'build', 'guests');
}

/** The sample guests' sources (their header comments describe them). */
export function samplesSourceDir(): string {
  return join(root, 'guests');
}

/**
 * Largest guest image read: a static ELF's file bytes (bss is not in the file). The sample
 * guests are a few KiB; this keeps `/dev/zero`, a sparse disk image or a wrong path from
 * costing gigabytes before "not an ELF" can be said.
 */
export const MAX_GUEST_IMAGE = 256 * 1024 * 1024;

/** A guest file: a regular file, not larger than MAX_GUEST_IMAGE, with the ELF magic — checked before it is read whole. */
export function readGuestFile(path: string): Uint8Array {
  const fail = (why: string): never => {
    throw new FileError(`cannot read '${path}': ${why}`);
  };
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO with no writer must not block; the type check below refuses it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return fail((e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) fail(`not a regular file (${st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a file'})`);
    if (st.size > MAX_GUEST_IMAGE) fail(`${st.size} bytes; a guest image may be at most ${MAX_GUEST_IMAGE} bytes (256 MiB)`);
    const magic = Buffer.alloc(4);
    if (readSync(fd, magic, 0, 4, 0) < 4 || !magic.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
      throw new ElfError(`${path}: bad magic: not an ELF file`);
    }
    const bytes = new Uint8Array(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, bytes, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return off === st.size ? bytes : bytes.subarray(0, off);
  } catch (e) {
    if (e instanceof HugevisorError) throw e;
    return fail((e as NodeJS.ErrnoException).code ?? (e as Error).message);
  } finally {
    closeSync(fd);
  }
}

/** The built sample guests' names, sorted (empty when none are built). */
export function sampleNames(): string[] {
  const dir = samplesDir();
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.elf')).map((f) => f.slice(0, -'.elf'.length)).sort() : [];
}

/** The ELF of a built sample guest; a FileError naming the samples there are. */
export function samplePath(name: string): string {
  const names = sampleNames();
  if (!names.includes(name)) {
    throw new FileError(`unknown sample '${name}' (samples: ${names.join(', ') || `none built in ${samplesDir()}; run \`npm run build:guests\``})`);
  }
  return join(samplesDir(), `${name}.elf`);
}

