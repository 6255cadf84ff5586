// The CLI's console is a byte stream: stdout gets exactly the bytes the guest wrote to COM1
// (invalid UTF-8 and a trailing partial sequence included), --json carries them in
// consoleBase64, and a flood beyond the 16 MiB the result keeps is streamed whole while the
// result stays bounded and says how much it did not keep (docs/cli.md "Output", "--json").
import test from 'ava';
import { assemble, guestFile } from './fixtures/assemble.ts';
import { cli, cliInProcess } from './fixtures/cli.ts';
import { fakeAddon, out, type Step } from './fixtures/fake-vcpu.ts';
import { main } from '../src/cli/main.ts';
import { createVm } from '../src/kvm/vm.ts';
import { Console } from '../src/kvm/devices.ts';

const RAW = Uint8Array.of(0x80, 0xff, 0xc3); // two invalid bytes, then the first of a two-byte sequence
const rawGuest = assemble(
  `
        .text
        .globl _start
_start: mov     $0x3f8, %dx
${[...RAW].map((b) => `        movb    $${b}, %al\n        outb    %al, %dx`).join('\n')}
        xor     %eax, %eax
        outb    %al, $0xf4
        hlt
`,
  'raw-bytes',
);

test('stdout receives exactly the bytes the guest wrote, and --json has them in consoleBase64', async (t) => {
  const g = guestFile(rawGuest);
  try {
    for (const run of [cli, cliInProcess]) {
      const r = await run(['run', g.path, '--ept', 'off']);
      t.is(r.code, 0);
      t.deepEqual(new Uint8Array(r.stdoutBytes), RAW);
      t.true(r.stderr.startsWith('\n--- hugevisor: '), 'the summary starts on its own line');
      t.false(r.stderr.includes('console:'), 'nothing truncated');
      const j = JSON.parse((await run(['run', g.path, '--ept', 'off', '--json'])).stdout);
      t.is(j.schema, 'hugevisor.run/4');
      t.is(j.consoleBase64, Buffer.from(RAW).toString('base64'));
      t.is(j.console, '\ufffd\ufffd\ufffd');
      t.is(j.consoleTruncatedBytes, 0);
      t.is(j.vmm.console_bytes, 3);
    }
  } finally {
    g.remove();
  }
});

// 17 MiB of console output (1 MiB beyond the 16 MiB a result keeps) through the real CLI,
// Vm, exit handlers and COM1, from a fake vCPU that exits with an OUT per byte (the
// interpreter would take minutes). Bytes cycle through 0..255, so the stream holds newlines
// and invalid UTF-8. Every property checked holds from the first byte past
// Console.MAX_COLLECTED, and the cost is one exit per byte (100 MB took these two tests 2–5
// minutes each on a loaded 2-core machine; 20 MB, 16 s of CPU): 1 MiB past the limit is 256
// flush buffers of bytes the result does not keep, and the limit falls inside a run (byte
// 240's), so a kept/dropped boundary off by one shows in the checks below.
const FLOOD = 17 * 1024 * 1024;
// Byte b is sent FLOOD/256 times in a row (69632 × 0x00, 69632 × 0x01, ...).
const RUN = FLOOD / 256;
const floodSteps = (): Step[] => [
  ...Array.from({ length: 256 }, (_, b) => ({ instructions: 1, exit: out(0x3f8, b), repeat: RUN })),
  { instructions: 1, exit: out(0xf4, 0) },
];

async function floodRun(args: string[]) {
  const { addon } = fakeAddon(floodSteps());
  let stdoutBytes = 0;
  let stdoutChunks = 0;
  let stdoutJson = '';
  let stderr = '';
  const code = await main(
    ['run', 'test/fixtures/spin.elf', '--ept', 'off', ...args],
    {
      out: (d) => {
        if (typeof d === 'string') stdoutJson += d;
        else {
          stdoutBytes += d.length;
          stdoutChunks++;
        }
      },
      err: (d) => void (stderr += typeof d === 'string' ? d : Buffer.from(d).toString('latin1')),
    },
    { createVm: (config, image) => createVm(config, image, { addon }) },
  );
  return { code, stdoutBytes, stdoutChunks, stdoutJson, stderr };
}

test('a 17 MiB console flood is streamed whole in text mode and the summary says what the result did not keep', async (t) => {
  t.timeout(600_000);
  const r = await floodRun([]);
  t.is(r.code, 0);
  t.is(r.stdoutBytes, FLOOD);
  t.true(r.stdoutChunks >= FLOOD / Console.FLUSH_BYTES);
  const kept = Console.MAX_COLLECTED;
  const g = (n: number) => n.toLocaleString('en-US');
  t.regex(r.stderr, new RegExp(`^console:      ${g(FLOOD)} bytes printed; the result keeps the first ${g(kept)}, ${g(FLOOD - kept)} not kept \\(the stream had them all\\)$`, 'm'));
});

test('a 17 MiB console flood gives a complete --json result with the first 16 MiB and the exact truncation count', async (t) => {
  t.timeout(600_000);
  const r = await floodRun(['--json']);
  t.is(r.code, 0);
  t.is(r.stderr, '');
  t.is(r.stdoutBytes, 0);
  const j = JSON.parse(r.stdoutJson);
  t.is(j.stopReason, 'exit');
  t.is(j.vmm.console_bytes, FLOOD);
  t.is(j.consoleTruncatedBytes, FLOOD - Console.MAX_COLLECTED);
  const bytes = Buffer.from(j.consoleBase64, 'base64');
  t.is(bytes.length, Console.MAX_COLLECTED);
  t.true(j.console.length <= Console.MAX_COLLECTED);
  // The kept bytes are the first ones printed: byte b for FLOOD/256 bytes each.
  t.is(bytes[0], 0);
  t.is(bytes[RUN - 1], 0);
  t.is(bytes[RUN], 1);
  t.is(bytes[Console.MAX_COLLECTED - 1], Math.floor((Console.MAX_COLLECTED - 1) / RUN));
  // Worst case: every kept byte JSON-escaped as \u00XX in console, plus base64's 4/3.
  t.true(r.stdoutJson.length < (6 + 4 / 3) * Console.MAX_COLLECTED + 64 * 1024, `${r.stdoutJson.length} characters of JSON`);
});
