import test from 'ava';
import type { Hva } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { createHost } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import { InvariantError } from '../src/mm/invariants.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;

test('every frame is free again after all processes exit and the host closes', (t) => {
  const h = createHost({ memoryBytes: 64 * MiB, debugChecks: true }) as Host;
  const total = h.nrFrames;
  const mm = h.newProcess();
  const a = mm.mmap(10 * MiB + 3 * PAGE_SIZE, { alignHuge: true });
  for (let off = 0; off < 10 * MiB; off += 64 * 1024) mm.writeBytes(at(a + off), new Uint8Array([off & 0xff]));
  const child = mm.fork();
  child.writeBytes(at(a + 3 * MiB), new Uint8Array([1]));
  mm.munmap(at(a + 5 * PAGE_SIZE), 3 * PAGE_SIZE);
  mm.mprotect(at(a + 6 * MiB), MiB, 1);
  const pins = mm.get_user_pages(at(a + 8 * MiB), 3, true);
  for (const p of pins) h.put_page(p);
  child.exit_mmap();
  mm.exit_mmap();
  t.is(h.nr_free_pages(), total - 1, 'only the zero page is left');
  h.close();
  t.is(h.nr_free_pages(), total);
  t.is(h.buddy.nr_free[10], total / 1024, 'merged back into order-10 blocks');
});

test('a leaked gup pin is reported when the host closes', (t) => {
  const h = createHost({ memoryBytes: 16 * MiB, debugChecks: true });
  const mm = h.newProcess();
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.get_user_pages(a, 1, false);
  t.throws(() => h.close(), { message: /512 frames still allocated/ });
});

test('the checker catches a wrong _mapcount, a wrong head _count and a lost deposit', (t) => {
  const h = createHost({ memoryBytes: 16 * MiB, debugChecks: true }) as Host;
  const mm = h.newProcess();
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  mm.handle_mm_fault(a, true);
  mm.handle_mm_fault(at(a + 2 * MiB), true);
  const head = mm.follow_page(a)!.headPfn;
  h.pages._mapcount[head]++;
  t.throws(() => h.checkInvariants(), { instanceOf: InvariantError, message: /_mapcount\+1 = 2 but 1/ });
  h.pages._mapcount[head]--;
  h.pages._count[head + 3] = 1; // a tail pin the head does not account for
  t.throws(() => h.checkInvariants(), { instanceOf: InvariantError, message: /head _count 1 < Σ tail _count 1 \+ mappings 1/ });
  h.pages._count[head + 3] = 0;
  const mmi = mm as unknown as { pmd_huge_pte: unknown[] };
  const dep = mmi.pmd_huge_pte.pop();
  t.throws(() => h.checkInvariants(), { instanceOf: InvariantError, message: /2 huge PMDs but 1 deposited/ });
  mmi.pmd_huge_pte.push(dep);
  h.checkInvariants();
  t.pass();
  h.close();
});
