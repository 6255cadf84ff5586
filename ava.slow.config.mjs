// `npm run test:slow`: the two test files that build the native addon from scratch
// (test/package.test.ts: npm pack + npm install in a fresh project; test/gyp-build.test.ts:
// the node-gyp build): the 1st and 4th longest of `npm test` (180 s and 84 s wall of 865 s
// at a load average of 36 on 2 cores, docs/performance.md). `npm test`
// leaves them out (package.json "ava".files); .ci/run runs both commands. The options are
// package.json's.
import { readFileSync } from 'node:fs';

const ava = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).ava;
export default { ...ava, files: ['test/package.test.ts', 'test/gyp-build.test.ts'] };
