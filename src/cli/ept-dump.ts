/**
 * The ept-dump view: each EPT leaf of a GPA range beside what the host page tables map at
 * the memslot's HVA (the data comes from Vm.eptView), as aligned text.
 */
import type { EptView } from '../api/types.ts';

const hex = (n: number) => '0x' + n.toString(16);

export function formatEptDump(v: EptView): string {
  const in2m = v.leaves.filter((l) => l.size === '2m').length;
  const lines = [
    `EPT ${hex(v.start)}-${hex(v.end)}: ${v.leaves.length - in2m} 4K + ${in2m} 2M leaves in range; ` +
      `VM: ${v.pages_4k} 4K + ${v.pages_2m} 2M leaves mapped, ${v.tables} tables`,
    'GPA              size perm  PFN        | HVA              host PFN   host',
  ];
  for (const l of v.leaves) {
    const m = l.host;
    const host = m ? `${m.huge ? `huge(head ${m.headPfn})` : '4K'}${m.writable ? ' rw' : ' ro'}` : 'unmapped!';
    lines.push(
      `${hex(l.gpa).padEnd(16)} ${l.size === '2m' ? '2M' : '4K'}   ${l.writable ? 'rwx' : 'r-x'}   ${String(l.pfn).padEnd(10)} | ` +
        `${(l.hva === null ? 'no memslot' : hex(l.hva)).padEnd(16)} ${String(m?.pfn ?? '-').padEnd(10)} ${host}`,
    );
  }
  return lines.join('\n');
}
