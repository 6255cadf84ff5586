// `hugevisor list`: each sample with its description and arguments, read from the header of
// its source. The arguments cannot drift from the guest: every sample documents exactly the
// args[] indices its arg_or calls read, with the defaults those calls pass.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseU64 } from '../src/cli/args.ts';
import { parseSampleHeader } from '../src/guest/samples.ts';
import { cli, root } from './fixtures/cli.ts';

const guests = [
  ...readdirSync(join(root, 'guests')).filter((f) => f.endsWith('.s')),
  ...readdirSync(join(root, 'guests', 'c')).filter((f) => f.endsWith('.c')).map((f) => join('c', f)),
];

/** The hv_arg(N, DEFAULT) calls of a C guest: both literals (a call without them is an error). */
function hvArgCalls(source: string): { index: number; default: bigint }[] {
  return [...source.matchAll(/\bhv_arg\(([^,)]*),\s*([^)]*)\)/g)].map((m) => {
    if (!/^\d+$/.test(m[1]!.trim()) || !/^(\d+|0x[0-9a-f]+)$/i.test(m[2]!.trim())) throw new Error(`hv_arg(${m[1]}, ${m[2]}) without a literal index and default`);
    return { index: Number(m[1]), default: BigInt(m[2]!.trim()) };
  });
}

/**
 * The arg_or calls of a guest's source: the index in %edi and the default in %rsi/%esi,
 * as set by the instructions before the call (`movl $N, %edi` or `xorl %edi, %edi`).
 */
function argOrCalls(source: string): { index: number; default: bigint }[] {
  const lines = source.split('\n').map((l) => l.replace(/#.*$/, '').trim());
  const calls: { index: number; default: bigint }[] = [];
  lines.forEach((l, i) => {
    if (!/^(\d+:\s*)?call\s+arg_or$/.test(l)) return;
    let index: number | undefined;
    let def: bigint | undefined;
    for (let j = i - 1; j >= 0 && j >= i - 4; j--) {
      const p = lines[j]!;
      const edi = /^mov[lq]\s+\$(\w+),\s*%[er]di$/.exec(p);
      const esi = /^mov[lq]\s+\$(\w+),\s*%[er]si$/.exec(p);
      if (index === undefined && edi) index = Number(edi[1]);
      if (index === undefined && /^xor[lq]\s+%edi,\s*%edi$/.test(p)) index = 0;
      if (def === undefined && esi) def = BigInt(esi[1]!);
      if (def === undefined && /^xor[lq]\s+%esi,\s*%esi$/.test(p)) def = 0n;
    }
    if (index === undefined || def === undefined) throw new Error(`arg_or call at line ${i + 1} without a literal index and default`);
    calls.push({ index, default: def });
  });
  return calls;
}

test('every sample documents exactly the arguments its arg_or calls read, with their defaults', (t) => {
  let documented = 0;
  for (const f of guests) {
    const source = readFileSync(join(root, 'guests', f), 'utf8');
    const calls = f.endsWith('.c') ? hvArgCalls(source.replace(/^\/\/.*$/gm, '')) : argOrCalls(source);
    const { args } = parseSampleHeader(source);
    documented += args.length;
    const read = [...new Map(calls.map((c) => [c.index, c.default])).entries()].sort(([a], [b]) => a - b);
    t.is(read.length, calls.length, `${f}: each index is read once`);
    t.deepEqual(
      args.map((a) => [a.index, parseU64(a.default, `${f} arg ${a.index}`)]),
      read,
      `${f}: the header's "# arg N: name = default" lines match the arg_or (hv_arg) calls`,
    );
  }
  t.is(documented, 37, 'alu-loop 1, demand-paging 2, gups 4, mem-scan 2, pointer-chase 2; C: c-allocmix 3, c-bfs 4, c-chase 3, c-gups 4, c-hash 3, c-hello 2, c-rbtree 3, c-sort 2, c-stream 2: the scan finds them');
});

test('the header parser reads name, default, unit and note', (t) => {
  const src = '# x: a guest.\n# arg 1: updates = 1000000\n# arg 0: region = 256M bytes (rounded down to a power of two)\n# arg 2: checksum = 1 (0 = skip)\n        .text\n# arg 3: ignored = 1\n';
  t.deepEqual(parseSampleHeader(src), {
    description: 'a guest.',
    args: [
      { index: 0, name: 'region', default: '256M', unit: 'bytes', note: 'rounded down to a power of two' },
      { index: 1, name: 'updates', default: '1000000', unit: null, note: null },
      { index: 2, name: 'checksum', default: '1', unit: null, note: '0 = skip' },
    ],
  });
});

test('list shows each sample with its arguments, defaults and units; list --json the same as data', async (t) => {
  const r = await cli(['list']);
  t.is(r.code, 0);
  t.is(r.stderr, '');
  const lines = r.stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith('gups '));
  t.is(lines[at], 'gups           bench kernel, random 8-byte read-modify-writes driven by an LCG (8 per update).');
  t.is(lines[at + 1], '               args: [0] region = 256M bytes (rounded down to a power of two, at least 4 KiB), [1] updates = 1000000, [2] seed = 1, [3] checksum = 1 (0 = skip)');
  t.is(lines[lines.findIndex((l) => l.startsWith('hello ')) + 1]!.startsWith('isa-selftest '), true, 'a sample without arguments has no args line');
  const j = JSON.parse((await cli(['list', '--json'])).stdout);
  t.is(j.schema, 'hugevisor.list/1');
  const gups = j.samples.find((s: { name: string }) => s.name === 'gups');
  t.deepEqual(gups.args[3], { index: 3, name: 'checksum', default: '1', unit: null, note: '0 = skip' });
  t.deepEqual(j.samples.find((s: { name: string }) => s.name === 'hello').args, []);
  const cgups = j.samples.find((s: { name: string }) => s.name === 'c-gups');
  t.regex(cgups.description, /^HPCC RandomAccess/, 'C guests are listed from their // header');
  t.deepEqual(cgups.args[0], { index: 0, name: 'table', default: '8M', unit: 'bytes', note: 'rounded down to a power of two, at least 4 KiB' });
});

test('the header parser reads // headers of C guests and stops at the first non-comment line', (t) => {
  const src = '// c-x: a C guest.\n// arg 0: n = 4K bytes (a note)\n#include "hv.h"\n// arg 1: ignored = 1\n';
  t.deepEqual(parseSampleHeader(src), { description: 'a C guest.', args: [{ index: 0, name: 'n', default: '4K', unit: 'bytes', note: 'a note' }] });
});
