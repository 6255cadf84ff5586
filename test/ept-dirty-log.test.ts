import test from 'ava';
import { countDirty } from '../src/kvm/mmu/dirty-log.ts';
import { gpa } from '../src/util/address.ts';
import { ConfigError } from '../src/util/errors.ts';
import { MiB, countBadPages, guestAccess, pattern, setupEpt, touchRegion } from './ept-helpers.ts';

test('dirty logging splits EPT mappings to 4 KiB, logs first writes, re-protects on get, and restores 2 MiB when disabled', (t) => {
  const { k, host, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, hostDebug: true });
  k.addRamSlot(0, gpa(0), 8 * MiB);
  touchRegion(k, physmem, 0, 8 * MiB, true, 1);
  t.is(k.pages_2m, 4);

  k.enableDirtyLog(0);
  t.is(k.pages_2m, 0, 'enabling zaps the huge leaves');
  t.throws(() => k.enableDirtyLog(0), { instanceOf: ConfigError });

  // Reads fault in read-only 4 KiB leaves and are not logged.
  const reads = touchRegion(k, physmem, 0, 2 * MiB, false, 1);
  t.is(reads.exits, 512);
  t.is(k.pages_4k, 512);
  t.is(countDirty(k.getDirtyLog(0)), 0);

  // Writes to 10 pages of the read range and 5 pages elsewhere: 15 exits, 15 bits.
  let exits = 0;
  const written = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => i * 4096).concat([3, 4, 5, 6, 7].map((i) => i * MiB));
  for (const g of written) {
    const s = { exits: 0, retries: 0 };
    guestAccess(k, physmem, gpa(g), true, pattern(g, 2), s);
    guestAccess(k, physmem, gpa(g), true, pattern(g, 2), s); // a second write does not exit
    exits += s.exits;
  }
  t.is(exits, 15);
  t.is(k.pages_2m, 0);
  const log = k.getDirtyLog(0);
  t.is(countDirty(log), 15);
  t.is(log[0], 0xff);
  t.is(log[1], 0x03);
  t.is(log[3 * 256 / 8], 1, 'page 768 (GPA 3 MiB)');

  // After get-and-clear the pages are write-protected again: one exit per page written.
  const again = { exits: 0, retries: 0 };
  guestAccess(k, physmem, gpa(0), true, pattern(0, 2), again);
  t.is(again.exits, 1);
  t.is(countDirty(k.getDirtyLog(0)), 1);
  k.checkInvariants();

  k.disableDirtyLog(0);
  t.is(k.pages_4k, 0, 'collapsible 4 KiB leaves are zapped');
  const back = touchRegion(k, physmem, 0, 8 * MiB, false, 0);
  t.is(back.exits, 4);
  t.is(k.pages_2m, 4);
  t.throws(() => k.getDirtyLog(0), { instanceOf: ConfigError, message: /not enabled/ });
  // Data: written pages hold round 2, the rest round 1.
  let bad = 0;
  for (let g = 0; g < 8 * MiB; g += 4096) {
    const want = pattern(g, written.includes(g) ? 2 : 1);
    if (guestAccess(k, physmem, gpa(g), false) !== want) bad++;
  }
  t.is(bad, 0);
  t.is(countBadPages(k, physmem, 6 * MiB + 4096, 4096, 1), 0);
  k.checkInvariants();
  host.checkInvariants();
});
