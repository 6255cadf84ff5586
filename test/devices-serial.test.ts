// The port-I/O devices and the console stream.
import test from 'ava';
import { Console, DebugExit, PioBus, RoiPort, Serial8250 } from '../src/kvm/devices.ts';

test('COM1 transmits bytes written to 0x3F8 and ignores setup writes', (t) => {
  const c = new Console();
  const s = new Serial8250(c);
  for (const [port, v] of [[0x3f9, 0], [0x3fa, 0xc7], [0x3fc, 0x0b], [0x3f8, 0x68], [0x3f8, 0x69]]) t.true(s.write(port, 1, v));
  c.flush();
  t.is(c.text, 'hi');
});

test('while LCR.DLAB is set, 0x3F8 is the divisor latch and prints nothing (as in QEMU)', (t) => {
  const c = new Console();
  const s = new Serial8250(c);
  s.write(0x3fb, 1, 0x80);
  s.write(0x3f8, 1, 0x01); // divisor low: 115200 baud
  s.write(0x3f9, 1, 0x00);
  s.write(0x3fb, 1, 0x03); // 8N1, DLAB off
  s.write(0x3f8, 1, 0x21);
  c.flush();
  t.is(c.text, '!');
  t.is(c.byteCount, 1);
  t.is(s.read(0x3fb), 0x03);
});

test('COM1 reads: line status 0x60, no interrupt pending, no data', (t) => {
  const s = new Serial8250(new Console());
  t.is(s.read(0x3fd), 0x60);
  t.is(s.read(0x3fa), 0x01);
  t.is(s.read(0x3f8), 0x00);
});

test('the console streams at newlines and flushes, keeping multi-byte UTF-8 characters whole', (t) => {
  const chunks: string[] = [];
  const c = new Console({ onText: (s) => chunks.push(s) });
  for (const b of new TextEncoder().encode('ab\nc')) c.putByte(b);
  t.deepEqual(chunks, ['ab\n']);
  const euro = new TextEncoder().encode('€'); // 3 bytes
  c.putByte(euro[0]);
  c.flush();
  c.putByte(euro[1]);
  c.putByte(euro[2]);
  c.flush();
  t.deepEqual(chunks, ['ab\n', 'c', '€']);
  t.is(c.text, 'ab\nc€');
  t.is(c.byteCount, 7);
});

test('devices cannot share a port', (t) => {
  const bus = new PioBus();
  const ctl = { requestStop() {}, roiBegin() {}, roiEnd() {}, log() {} };
  bus.register(new DebugExit(ctl));
  bus.register(new RoiPort(ctl));
  t.throws(() => bus.register(new DebugExit(ctl)), { message: /I\/O ports 0xf4-0xf4 of debug-exit overlap debug-exit/ });
  t.is(bus.find(0xf6)?.name, 'roi');
  t.is(bus.find(0xf5), undefined);
});

test('the console keeps and streams the exact bytes: invalid UTF-8 and a trailing partial sequence included', (t) => {
  const raw: Uint8Array[] = [];
  const text: string[] = [];
  const c = new Console({ onBytes: (b) => raw.push(b), onText: (s) => text.push(s) });
  for (const b of [0x80, 0xff, 0xc3]) c.putByte(b);
  c.flush();
  t.deepEqual(raw, [Uint8Array.of(0x80, 0xff, 0xc3)]);
  t.deepEqual(c.bytes, Uint8Array.of(0x80, 0xff, 0xc3));
  t.deepEqual(text, ['\ufffd\ufffd']); // 0xc3 may still start a character
  c.end();
  t.deepEqual(text, ['\ufffd\ufffd', '\ufffd']);
  t.is(c.text, '\ufffd\ufffd\ufffd');
  t.is(c.truncatedBytes, 0);
});

test('beyond MAX_COLLECTED the console streams every byte and the result counts what it did not keep', (t) => {
  let streamed = 0;
  const c = new Console({ onBytes: (b) => void (streamed += b.length) });
  const extra = 12345;
  const total = Console.MAX_COLLECTED + extra;
  for (let i = 0; i < total; i++) c.putByte(i % 251 === 250 ? 0x0a : 0x41 + (i % 26));
  c.end();
  t.is(streamed, total);
  t.is(c.byteCount, total);
  t.is(c.bytes.length, Console.MAX_COLLECTED);
  t.is(c.truncatedBytes, extra);
  t.is(c.text.length, Console.MAX_COLLECTED);
});
